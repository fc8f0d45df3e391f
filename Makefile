# Voice agent worker. `make demo` runs a whole call offline; `make test` runs the tests.
# Both create .venv themselves. Presets load .env (your keys and settings) if present, then
# their .env.* file, so a preset's provider choices always win over .env.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

# the development server `make livekit-dev` runs, unless the environment or .env names another
LIVEKIT_URL        ?= ws://localhost:7880
LIVEKIT_API_KEY    ?= devkey
LIVEKIT_API_SECRET ?= secret
export LIVEKIT_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET

# Load .env, then a preset file, into the environment of one command. The preset comes last
# so it decides the providers, models, org and persona even when .env is a copy of
# .env.example; .env supplies keys and settings presets leave alone. An empty `NAME=` line
# in .env is skipped: it would blank a key exported in the shell, and empty means unset.
DOTENV_SET_LINES = grep -Ev '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*=[[:space:]]*$$' .env
define with_env
	set -a; [ ! -f .env ] || eval "$$($(DOTENV_SET_LINES))"; . ./$(1); set +a;
endef

# the LiveKit server for real-room tests and `make call`, built from its Go module (SPEC §11)
LIVEKIT_SERVER_VERSION ?= v1.13.5
LIVEKIT_SERVER_MODULE  := github.com/livekit/livekit-server
LIVEKIT_SERVER         := .bin/livekit-server-$(LIVEKIT_SERVER_VERSION)

.PHONY: install models demo test lint bench test-providers livekit-server livekit-dev call \
        web web-client screenshots dev-local dev-vosk-piper dev-deepgram-piper \
        dev-deepgram-elevenlabs dev-cloud dev-realtime

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	rm -f $(VENV)/.installed-*; touch $@

models: install
	$(PY) -m agent.tools.download_models

demo: install
	$(call with_env,.env.local-testing) $(PY) -m agent simulate \
		--say "Hi, what are your opening hours?" \
		--say "And where is your office located?" \
		--output out/demo.wav

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: install
	$(PY) -m tests.bench --json bench-results/bench.json

# Built once per pin into .bin/ (git-ignored): `go mod download` fetches the module, then
# `go build ./cmd/server` inside it (its go.mod may hold `replace` lines, which
# `go install module@version` refuses). Needs Go >= the module's `go` line (1.26 here).
livekit-server: $(LIVEKIT_SERVER)

$(LIVEKIT_SERVER):
	@command -v go >/dev/null || { echo "make livekit-server needs Go >= 1.26 (https://go.dev/dl/)"; exit 1; }
	@mkdir -p .bin
	@echo "building $(LIVEKIT_SERVER_MODULE)@$(LIVEKIT_SERVER_VERSION) (a few minutes the first time)"
	dir=$$(cd /tmp && go mod download -json $(LIVEKIT_SERVER_MODULE)@$(LIVEKIT_SERVER_VERSION) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$dir" || { echo "go mod download found no module directory"; exit 1; }; \
	cd "$$dir" && go build -trimpath -o $(CURDIR)/$@.tmp ./cmd/server
	mv $@.tmp $@
	ln -sfn $(notdir $@) .bin/livekit-server

# a development server on this machine: ws://127.0.0.1:7880, key devkey, secret secret
livekit-dev: livekit-server
	.bin/livekit-server --dev --bind 127.0.0.1 --node-ip 127.0.0.1

# call the worker that `make dev-local` runs, through the server `make livekit-dev` runs
call: install
	$(call with_env,.env.local-testing) $(PY) -m agent call \
		--say "Hi, what are your opening hours?" \
		--say "And where is your office located?" \
		--output out/call.wav

# the browser caller for the worker `make dev-local` runs: http://127.0.0.1:8090
web: install
	$(call with_env,.env.local-testing) $(PY) -m agent web

# The LiveKit JavaScript client the web caller's page loads, from the npm registry at a
# pinned version, committed in the package so the page needs neither npm nor the internet
LIVEKIT_CLIENT_VERSION ?= 2.23.0
WEB_STATIC             := agent/tools/web/static
web-client:
	@command -v npm >/dev/null || { echo "make web-client needs npm (Node.js)"; exit 1; }
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent livekit-client@$(LIVEKIT_CLIENT_VERSION) >/dev/null \
		&& tar xzf livekit-client-$(LIVEKIT_CLIENT_VERSION).tgz) && \
	cp "$$tmp/package/dist/livekit-client.umd.js" $(WEB_STATIC)/livekit-client.umd.js && \
	cp "$$tmp/package/LICENSE" $(WEB_STATIC)/livekit-client.LICENSE && \
	echo "livekit-client $(LIVEKIT_CLIENT_VERSION) (npm), dist/livekit-client.umd.js" \
		> $(WEB_STATIC)/livekit-client.VERSION

# the README's pictures of the web caller and the operator page, from the browser test
screenshots: install
	$(PY) -m pytest -q tests/e2e/test_web.py --screenshots tests/e2e/screenshots

test-providers: install
	$(call with_env,.env.local-testing) $(PY) -m agent providers --check

dev-local dev-vosk-piper: install
	$(call with_env,.env.local-testing) $(PY) -m agent dev

dev-deepgram-piper: install
	$(call with_env,.env.cloud-providers) \
		STT_PROVIDER=deepgram STT_FALLBACK=vosk,whisper TTS_PROVIDER=piper TTS_FALLBACK= \
		$(PY) -m agent dev

dev-deepgram-elevenlabs: install
	$(call with_env,.env.cloud-providers) \
		STT_PROVIDER=deepgram STT_FALLBACK=vosk,whisper TTS_PROVIDER=elevenlabs TTS_FALLBACK=piper \
		$(PY) -m agent dev

dev-cloud: install
	$(call with_env,.env.cloud-providers) $(PY) -m agent dev

# speech-to-speech on OpenAI's Realtime API (needs OPENAI_API_KEY), the local stack of
# .env.local-testing as its fallback within the call
dev-realtime: install
	$(call with_env,.env.local-testing) \
		REALTIME_PROVIDER=openai-realtime OPENAI_REALTIME_MODEL=gpt-realtime \
		OPENAI_REALTIME_VOICE=marin $(PY) -m agent dev
