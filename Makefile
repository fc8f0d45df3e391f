# Voice agent worker. `make demo` runs a whole call offline; `make test` runs the tests.
# Both create .venv themselves. Presets load their .env.* file, then .env (your keys) if present.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

# load a preset file, then .env, into the environment of one command
define with_env
	set -a; . ./$(1); [ ! -f .env ] || . ./.env; set +a;
endef

.PHONY: install models demo test lint bench test-providers \
        dev-local dev-vosk-piper dev-deepgram-piper dev-deepgram-elevenlabs dev-cloud

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	rm -f $(VENV)/.installed-*; touch $@

models: install
	$(PY) -m agent.models

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
