# emotion: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# pip as the registry serves it: the machine's pip config points at a CPU torch file with which
# torchvision cannot import, so torch and torchvision are installed as a matched pair from the registry.
PIP := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PY) -m pip
TORCH_PIN ?= torch==2.13.0 torchvision==0.28.0
STAMP := $(VENV)/.installed
FER2013_DIR ?= $(if $(wildcard ../shared/data/fer2013),../shared/data/fer2013,data/fer2013)
ARGS ?=
# `make bench-peers`: the `fer` package in an environment of its own, never a project dependency.
PEERS_VENV ?= .venv-peers
PEERS_PY := $(PEERS_VENV)/bin/python
PEERS_PIP := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PEERS_PY) -m pip

browser: ## Headless Chromium and its driver from Debian, for the page test (tests/test_serve.py); needs root
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo 'chromium and chromedriver: present'; \
	else apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

.PHONY: help install browser docs bench-peers bench-video train train-sample evaluate test test-slow test-all lint results accuracy-table clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv and install emotion (editable) with its dev, docs, onnx, serve, parquet and ray extras
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[dev,docs,onnx,serve,parquet,ray]'
	# facenet-pytorch, the tests' reference for our MTCNN, pins torch<=2.3, numpy<2 and Pillow<10.3;
	# it needs none of that, so it must never be allowed to downgrade torch. Installed last, so that
	# pip's resolver never reports those pins as conflicts of the packages installed before it.
	$(PIP) install -q --no-deps facenet-pytorch==2.6.0
	$(PY) -c "import torch, torchvision, facenet_pytorch, emotion.train; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $@

# fer 25.10.3 declares facenet-pytorch (which would downgrade torch) and opencv-contrib (a second
# cv2 beside our headless one); it imports neither beyond what is here. It still imports
# pkg_resources, which setuptools 81 dropped, and cv2.CascadeClassifier, which OpenCV 5 moved out of
# the main package (fer checks for it even with mtcnn=True).
$(PEERS_VENV)/.installed: pyproject.toml Makefile
	test -x $(PEERS_PY) || python3 -m venv $(PEERS_VENV)
	$(PEERS_PIP) install -q $(TORCH_PIN) 'setuptools<81'
	$(PEERS_PIP) install -q --no-deps facenet-pytorch==2.6.0 fer==25.10.3
	$(PEERS_PIP) install -q -e . tensorflow-cpu==2.21.0 'opencv-python-headless<5'
	$(PEERS_PY) -c "import torch, facenet_pytorch, emotion; import tensorflow; from fer.fer import FER; print('fer ready')"
	touch $@

bench-peers: $(PEERS_VENV)/.installed ## Our predictor beside the `fer` package, photos and PrivateTest (own venv)
	$(PEERS_PY) experiments/bench_peers.py --data $(FER2013_DIR)

bench-video: $(PEERS_VENV)/.installed ## Our video pipeline beside `fer`'s Video.analyze on a 1080p pan (own venv)
	$(PEERS_PY) experiments/bench_video.py $(ARGS)

train: install ## The default model's recipe (experiment=vgg_ferplus: VGG taught by the FER+ crowd, bf16, EMA, 30 epochs, about 1.5-2 h on 2 cores; FER2013_DIR=path; ARGS=…)
	$(PY) -m emotion.train experiment=vgg_ferplus data.root=$(FER2013_DIR) $(ARGS)

train-sample: install ## A 3-epoch smoke run on the bundled 420-face sample
	$(PY) -m emotion.train data=fer2013_sample model=mini_xception trainer=cpu trainer.max_epochs=3 logger=csv $(ARGS)

evaluate: install ## Evaluate a checkpoint: make evaluate CKPT=path ARGS='tta=tencrop'
	$(PY) -m emotion.evaluate ckpt_path=$(CKPT) data.root=$(FER2013_DIR) $(ARGS)

test: install ## Run the default test suite (no slow tests); says first whether the page test can run
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo 'page test: chromium and chromedriver found'; \
	else echo 'page test: WILL SKIP, no chromium/chromedriver here (run `make browser` first, as root, to install Debian'"'"'s)'; fi
	$(PY) -m pytest -q --durations=10 $(ARGS)

docs: install ## Build the documentation site into site/ (mkdocs build --strict: a broken link fails; CI runs it)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: install ## ruff over the code, tests and experiments (what CI runs first)
	$(VENV)/bin/ruff check .

test-slow: install ## Run only the slow tests (real FER2013 from ../shared, minutes on CPU)
	$(PY) -m pytest -q -m slow $(ARGS)

test-all: install ## Run every test
	$(PY) -m pytest -q -m "slow or not slow" $(ARGS)

results: install ## Tabulate and plot every finished run into experiments/results/report/ (ARGS="--out DIR")
	$(PY) -m emotion.report --skip-invalid --out experiments/results/report $(ARGS) \
		$(patsubst %/metrics.json,%,$(wildcard outputs/train/runs/*/metrics.json \
		outputs/train/multiruns/*/*/metrics.json outputs/eval/runs/*/metrics.json))

accuracy-table: install ## Rewrite experiments/results/accuracy.md (our runs beside published results)
	$(PY) experiments/accuracy_table.py

clean: ## Remove run outputs and caches (keeps .venv)
	rm -rf outputs .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
