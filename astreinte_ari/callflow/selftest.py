"""A line's test call: the service calls the line itself and checks the whole path.

The call enters the PBX through the line's own inbound dialplan context (a Local
channel), so it proves what a customer's call needs: the dialplan, Stasis, the
announcement, the routing decision and an originate that is answered and
accepted. Its plan is the line's real plan with every hop aimed at the test
endpoint (routing/selftest.py): no person is rung. It passes when bridged with
the test endpoint within the line's `test_call.timeout`; the result goes to the
listeners (metrics, the failure alert), and the trail holds the call with outcome
test_passed or test_failed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.aio import within
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.dispatch import OnCallService, PlanBuilder
from astreinte_ari.callflow.identity import TEST_LEG, TEST_SOURCE_LEG, call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.telephony import DialRefused, TelephonyError, TelephonyPort
from astreinte_ari.config.model import AppConfig, NumberNotAllowed
from astreinte_ari.routing.selftest import decision_text, selftest_plan, selftest_target

log = logging.getLogger("astreinte_ari.selftest")

STASIS_WITHIN_S = 10.0  # a Local channel reaches Stasis in milliseconds: beyond, it never will
SETTLE_S = 5.0  # after hanging up an overdue test call, its ending reaches the trail


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    did: str
    line_name: str
    passed: bool
    detail: str  # why it failed, or how long it took
    call_id: str | None  # the test call in the trail (None: it never started)
    started_at: datetime
    ended_at: datetime
    decision: str  # the routing decision the test call stood for


ResultListener = Callable[[SelfTestResult], None]


class LineSelfTester:
    """Runs test calls on the call service's telephony; one at a time per line."""

    def __init__(
        self,
        *,
        service: OnCallService,
        port: TelephonyPort,
        plan_for: PlanBuilder,
        config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
        listeners: tuple[ResultListener, ...] = (),
    ) -> None:
        self._service = service
        self._port = port
        self._plan_for = plan_for
        self._config = config
        self._clock = clock
        self._listeners = list(listeners)
        self._waiting: dict[str, asyncio.Future[CallClosed]] = {}  # call id -> its ending
        self._running: set[str] = set()
        service.add_call_listener(self._on_closed)

    def add_listener(self, listener: ResultListener) -> None:
        self._listeners.append(listener)

    def _on_closed(self, closed: CallClosed) -> None:
        waiter = self._waiting.get(closed.call_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(closed)

    async def run(self, did: str) -> SelfTestResult:
        """One test call on the line `did` (configured with `test_call:`); never raises
        for a failure of the path: that is the result."""
        if did in self._running:
            raise RuntimeError(f"a test call on {did} is already running")
        self._running.add(did)
        try:
            result = await self._run(did)
        finally:
            self._running.discard(did)
        log.log(
            logging.INFO if result.passed else logging.ERROR,
            "test call on %s (%s) %s: %s [%s]",
            result.line_name,
            did,
            "passed" if result.passed else "FAILED",
            result.detail,
            result.decision,
        )
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("test call listener failed")
        return result

    async def _run(self, did: str) -> SelfTestResult:
        config, started = self._config(), self._clock()
        line = config.lines.get(did)
        if line is None or line.test_call is None:
            raise KeyError(f"line {did!r} has no test_call: in the configuration")
        spec = line.test_call

        def failed(detail: str, call_id: str | None = None, decision: str = "") -> SelfTestResult:
            return SelfTestResult(
                did, line.name, False, detail, call_id, started, self._clock(), decision
            )

        try:
            plan = self._plan_for(did, started)
            target = selftest_target(config, spec)
        except NumberNotAllowed as exc:
            return failed(f"test endpoint refused: {exc}")
        except Exception as exc:  # the routing itself failed: exactly what a test is for
            log.exception("test call on %s: no plan", did)
            return failed(f"no plan for the line: {exc!r}"[:300])
        if plan is None:
            return failed("no plan for the line")
        decision = decision_text(plan)
        token = uuid.uuid4().hex[:16]
        inbound, source = f"{TEST_LEG}{token}", f"{TEST_SOURCE_LEG}{token}"
        call_id = call_id_for_channel(inbound)
        waiter: asyncio.Future[CallClosed] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = waiter
        self._service.expect_test_call(inbound, selftest_plan(plan, target, spec.ring_timeout))
        try:
            return await self._place_and_wait(
                did, inbound, source, spec.timeout, waiter, failed, decision, call_id
            )
        finally:
            self._service.forget_test_call(inbound)
            self._waiting.pop(call_id, None)

    async def _place_and_wait(
        self,
        did: str,
        inbound: str,
        source: str,
        timeout_s: int,
        waiter: asyncio.Future[CallClosed],
        failed: Callable[..., SelfTestResult],
        decision: str,
        call_id: str,
    ) -> SelfTestResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            await self._port.place_test_call(
                did=did, inbound_channel_id=inbound, source_channel_id=source, timeout_s=timeout_s
            )
        except (TelephonyError, DialRefused) as exc:
            return failed(f"could not place the call: {exc}"[:300], decision=decision)
        # First milestone: the call entered the application (dialplan and Stasis work).
        try:
            await within(asyncio.shield(waiter), STASIS_WITHIN_S)
        except TimeoutError:
            if self._service.forget_test_call(inbound):
                await self._hang_up(source)
                return failed(
                    f"the call never entered the application within {STASIS_WITHIN_S:.0f} s "
                    "(dialplan context astreinte-inbound, Stasis?)",
                    decision=decision,
                )
        try:
            closed = await within(asyncio.shield(waiter), max(0.0, deadline - loop.time()))
        except TimeoutError:
            await self._hang_up(source)  # the flow ends the call: test_failed, in the trail
            try:
                closed = await within(asyncio.shield(waiter), SETTLE_S)
            except TimeoutError:
                return failed(f"not bridged within {timeout_s} s", call_id, decision)
            return failed(f"not bridged within {timeout_s} s: {closed.detail}", call_id, decision)
        if closed.outcome is not CallOutcome.TEST_PASSED:
            return failed(closed.detail, call_id, decision)
        took = (closed.ended_at - closed.started_at).total_seconds()
        return SelfTestResult(
            did,
            closed.plan.line_name,
            True,
            f"bridged with the test endpoint in {took:.1f} s",
            call_id,
            closed.started_at,
            closed.ended_at,
            decision,
        )

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self._port.hangup(channel_id)
        except TelephonyError as exc:
            log.warning("test call source %s not hung up: %s", channel_id, exc)
