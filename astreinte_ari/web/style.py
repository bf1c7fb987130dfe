"""The pages' one style sheet (served at /static/web.css: the CSP allows no inline style)."""

CSS = """
:root{color-scheme:light;--fg:#111;--bg:#fff;--muted:#444;--accent:#0b4f9c;--mark:#fde9a9;
  --hol:#e7eef9}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
.skip{position:absolute;left:-999px}
.skip:focus{left:.5em;top:.5em;background:#fff}
header{background:#0b2e59;color:#fff;padding:.5em .75em}
header a,header button{color:#fff}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25em 1em;
  align-items:center}
nav form{display:inline}
nav button{background:none;border:1px solid #fff;border-radius:4px;padding:.2em .6em;
  font:inherit;cursor:pointer}
main{padding:.75em;max-width:72em;margin:0 auto}
h1{font-size:1.4em;margin:.3em 0 .6em}
h2{font-size:1.15em;margin:1.2em 0 .4em}
.cards{display:grid;gap:.75em;grid-template-columns:repeat(auto-fill,minmax(17em,1fr))}
.card{border:1px solid #888;border-radius:6px;padding:.6em .8em}
.card h3{margin:0 0 .3em;font-size:1.05em}
.who{font-size:1.2em;font-weight:600}
ol.cascade{margin:.3em 0;padding-left:1.4em}
.muted{color:var(--muted)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #999;padding:.3em .45em;text-align:left;vertical-align:top}
th{background:#eef1f5}
tr.holiday th,tr.holiday td{background:var(--hol)}
tr.today th{outline:3px solid var(--accent)}
.src-swap,.src-override,.src-holiday,.src-closure{background:var(--mark);
  border-radius:3px;padding:0 .2em}
small{display:block;color:var(--muted)}
label{display:block;font-weight:600;margin:.6em 0 .2em}
input,select,button.primary{font:inherit;padding:.5em;border:1px solid #555;
  border-radius:4px;width:100%;max-width:24em}
button.primary{background:var(--accent);color:#fff;border-color:var(--accent);
  margin-top:.8em;cursor:pointer;width:auto}
.pager{display:flex;gap:1em;flex-wrap:wrap;margin:.4em 0}
.msg{border-left:4px solid var(--accent);padding:.4em .8em;background:#f3f6fb}
.error{border-left-color:#a00000;background:#fbeeee}
form.inline{display:inline;margin-left:.5em}
ul.feeds li{margin:.3em 0}
#feed-url{max-width:none;font-family:ui-monospace,monospace;font-size:.9em}
@media (min-width:48em){body{font-size:17px}main{padding:1.2em}}
"""
