# Two commands do everything:  `make demo` (set up, index the sample videos, search them, open
# the app) and `make test` (set up, run the whole test suite offline, then its fast tiers again in
# a second environment without the mediapipe extra).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VIDEOS ?= ../shared/data/videos
STAMP  := $(VENV)/.installed
# The core without the mediapipe extra (pyproject.toml says why it holds numpy below 2).
CORE_VENV := .venv-core
CORE_STAMP := $(CORE_VENV)/.installed

.PHONY: setup demo test test-core check lint bench screenshot clean

setup: $(STAMP)

# System packages, installed with apt when missing: ffmpeg (previews of videos browsers cannot
# play, audio conversion, ffprobe in tests and benchmarks), espeak-ng (offline speech),
# tesseract's Vietnamese and English data (offline OCR with marks), DejaVu fonts (the Vietnamese
# captions tests and benchmarks draw) and chromium (the browser the app's browser test and
# `make screenshot` drive with Playwright).
$(VENV)/.system: Makefile
	@missing=""; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	ls /usr/share/tesseract-ocr/*/tessdata/vie.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-vie"; \
	ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-eng"; \
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf || missing="$$missing fonts-dejavu-core"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml $(VENV)/.system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the versions this project is tested with (pip takes them from local disk here).
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1 torchcodec==0.17.0
	$(BIN)/pip install -q -e ".[dev,mediapipe]"
	touch $@

$(CORE_STAMP): pyproject.toml $(VENV)/.system
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install -q --upgrade pip
	$(CORE_VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1 torchcodec==0.17.0
	$(CORE_VENV)/bin/pip install -q -e ".[dev]"
	touch $@

demo: setup
	VIDEOS="$(VIDEOS)" PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: setup lint
	$(BIN)/pytest -q
	$(MAKE) test-core

# The fast tiers again in an environment without the mediapipe extra: numpy 2, the newest
# streamlit and pymilvus (the persons tests there use torchvision's backend, random weights).
test-core: $(CORE_STAMP)
	$(CORE_VENV)/bin/pytest -q --tiers unit,integration

# Formatting and lint rules: pyproject.toml, [tool.ruff].
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# ruff, then the fast tiers (unit, integration: no browser, Ray, Milvus, model run or whole evr
# process), for the edit-test loop; `make test` runs every tier.
check: lint
	$(BIN)/pytest -q --tiers unit,integration

bench: setup
	$(BIN)/python benchmarks/index_stages.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/index_stages.py --memory --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/throughput.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/models.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/person_counts.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/ocr_vietnamese.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/aic_import.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/workers.py --videos "$(VIDEOS)/msrvtt"
	$(BIN)/python benchmarks/speech.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/ui_latency.py
	$(BIN)/python benchmarks/cockpit_latency.py --videos "$(VIDEOS)/msrvtt"
	$(BIN)/python benchmarks/scale.py --keyframes 100000
	$(BIN)/python benchmarks/first_search.py --videos "$(VIDEOS)/msrvtt"
	$(BIN)/python benchmarks/shot_detectors.py --videos "$(VIDEOS)"
	$(BIN)/python benchmarks/decoders.py --videos "$(VIDEOS)/msrvtt"
	$(BIN)/python benchmarks/storyboard.py --frame "$(VIDEOS)/msrvtt/video7010.mp4"

# A PNG of the results page (docs/screenshot.png), taken with Debian's chromium.
screenshot: setup
	$(BIN)/python scripts/screenshot_ui.py --out docs/screenshot.png

clean:
	rm -rf $(VENV) $(CORE_VENV) data
