"""Tools for development and tests: a private Asterisk for the demo and the test suite.

The service never imports them."""
