# Caffe FER2013 facial-expression recognizer. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

FER2013 ?= ../shared/data/fer2013.csv.gz
DATA ?= $(if $(FOLDER),data/$(notdir $(patsubst %/,%,$(FOLDER))),data/fer2013)

.PHONY: help install install-predict caffe test test-fast lint demo serve browser preprocess train evaluate predict bench-faces bench-preprocess bench-predict bench-train ship soup ship-soup ensemble restore

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.predict-deps: requirements-predict.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-predict.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.all-deps: requirements.txt $(VENV)/.predict-deps
	$(PY) -m pip install -q -r requirements.txt
	touch $@

install-predict: $(VENV)/.predict-deps ## .venv with what prediction needs (no Caffe build); from predict import Recognizer works anywhere

caffe: $(VENV)/.all-deps ## build Caffe (CPU, pycaffe) into the cache, or reuse it; link it into .venv
	@prefix=$$(scripts/build_caffe.sh $(abspath $(PY))) && \
	  echo "$$prefix/src/python" > $(SITE)/fer_caffe.pth && \
	  ln -sf "$$prefix/build/tools/caffe" $(VENV)/bin/caffe && \
	  ln -sf "$$prefix/build/tools/compute_image_mean" $(VENV)/bin/compute_image_mean && \
	  echo "[caffe] using $$prefix"

install: caffe ## .venv with every dependency, pycaffe and the caffe tool

demo: install-predict ## the main job: predict on a sample photo with the shipped model -> out/demo.png
	$(PY) -m predict.demo

serve: install-predict ## a local web page: photo, video and camera labelled live (http://127.0.0.1:8000/; ARGS="--host 0.0.0.0 --port 8080")
	$(PY) -m predict.serve $(ARGS)

predict: install-predict ## predict on IMG=path (an image, a folder or a video); ARGS="..." for options
	@test -n "$(IMG)" || { echo "usage: make predict IMG=path/to/photo.jpg [ARGS='--top-k 2']"; exit 2; }
	$(PY) -m predict $(IMG) $(ARGS)

test-fast: lint ## lint, the import contract and every test that needs no Caffe build and is not slow (about a minute)
	$(PY) -m pytest -q -m "not caffe and not slow"

BROWSER_PACKAGES := chromium chromium-driver
browser: ## Debian's headless Chromium and its driver, for the web page's end-to-end test (once; about a minute)
	@dpkg-query -W -f='$${Status}\n' $(BROWSER_PACKAGES) 2>/dev/null | grep -c 'ok installed' | grep -qx 2 || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES); }

test: test-fast install browser ## test-fast, then build or reuse Caffe and run the rest: the Caffe tests and the slow ones
	$(PY) -m pytest -q -m "caffe or slow"

SHELL_SCRIPTS := $(wildcard experiments/*.sh scripts/*.sh) .ci/run
lint: $(VENV)/.all-deps ## ruff, the import contract (stages import ferlib, never each other) and shellcheck on the shell scripts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/shellcheck --external-sources $(SHELL_SCRIPTS)

FERPLUS ?= $(dir $(FER2013))fer2013new.csv
preprocess: $(VENV)/.all-deps ## FER2013 csv -> aligned LMDBs + mean (FER2013=csv[.gz], DATA=out dir, LABELS=ferplus); FOLDER=dir: your own labelled faces
	$(PY) -m preprocess $(if $(FOLDER),--folder $(FOLDER),$(FER2013)) --out $(DATA) $(if $(filter ferplus,$(LABELS)),--ferplus $(FERPLUS)) $(ARGS)

NET ?= fer_reference
EPOCHS ?= 150
RUNS ?= runs
RUN ?= $(shell $(PY) -m ferlib.runs $(NET) $(EPOCHS) $(WEIGHTS) $(if $(SEED),SEED=$(SEED)) $(if $(AUGMENT),AUGMENT=$(AUGMENT)) $(if $(SOFT),SOFT=$(SOFT)) $(if $(SOFT_WEIGHT),SOFT_WEIGHT=$(SOFT_WEIGHT)) $(if $(LR),LR=$(LR)) $(if $(LR_POLICY),LR_POLICY=$(LR_POLICY)) $(if $(MIXUP),MIXUP=$(MIXUP)))  # the run's name, made in one place

train: install ## train NET (default fer_reference) for EPOCHS (150) on DATA into RUNS/RUN; resumes; WEIGHTS=x.caffemodel: warm start; SEED=n; AUGMENT=fer (prototxt/augment/); LR=0.001; LR_POLICY=poly; SOFT=train_targets_lmdb SOFT_WEIGHT=0.5; MIXUP=0.2
	$(PY) -m train --net $(NET) --epochs $(EPOCHS) --data $(DATA) --runs $(RUNS) --run $(RUN) $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(SEED),--seed $(SEED)) $(if $(AUGMENT),--augment $(AUGMENT)) $(if $(LR),--base-lr $(LR)) $(if $(LR_POLICY),--lr-policy $(LR_POLICY)) $(if $(SOFT),--soft $(SOFT) $(if $(SOFT_WEIGHT),--soft-weight $(SOFT_WEIGHT))) $(if $(MIXUP),--mixup $(MIXUP)) $(ARGS)

evaluate: $(VENV)/.all-deps ## score RUNS/RUN (best snapshot on PublicTest) or MODEL=dir on PublicTest + PrivateTest
	$(PY) -m train.evaluate $(if $(MODEL),--model $(MODEL),--run $(RUNS)/$(RUN)) --data $(DATA) $(ARGS)

bench-faces: install-predict ## benchmark detection + alignment (and the detection rate on FER2013)
	$(PY) bench/faces_speed.py --fer2013 $(FER2013)

bench-preprocess: $(VENV)/.all-deps ## benchmark the whole make preprocess on FER2013
	$(PY) bench/preprocess_speed.py --fer2013 $(FER2013)

bench-predict: install-predict ## benchmark prediction: photo, crops, video, memory; AGAINST=models/x: video side by side
	$(PY) bench/predict_speed.py $(if $(MODEL),--model $(MODEL)) $(if $(AGAINST),--against $(AGAINST))

bench-train: install ## training speed of every net in prototxt/: Caffe's oneDNN engine, its CAFFE engine and PyTorch (installs torch)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) bench/train_speed.py $(if $(wildcard $(DATA)/train_lmdb),--data $(DATA))

NAME ?= fer2013_$(patsubst fer_%,%,$(NET))
MODELS ?= models
ship: install ## copy the evaluated RUNS/RUN into MODELS/NAME (default models/) with its model card
	$(PY) -m train.ship --run $(RUNS)/$(RUN) --name $(NAME) --models $(MODELS)

restore: ## take a model that left models/ back out of git history: NAME=fer2013_vgg_warm -> models/NAME
	@test -n "$(NAME)" || { echo 'usage: make restore NAME=fer2013_vgg_warm'; exit 2; }
	scripts/restore_model.sh $(NAME)

SOUP ?= fer2013_soup
soup: $(VENV)/.all-deps ## one model from the weights of models fine-tuned from one start: MEMBERS="models/a models/b" DATA=... -> models/SOUP; ARGS="--raw DATA_plain"
	@test -n "$(MEMBERS)" || { echo 'usage: make soup MEMBERS="models/a models/b" DATA=data/fer2013-rawview SOUP=fer2013_vgg_soup'; exit 2; }
	$(PY) -m train.soup $(foreach m,$(MEMBERS),--member $(m)) --data $(DATA) --name $(SOUP) --models $(MODELS) $(ARGS)

ship-soup: $(VENV)/.all-deps ## ship a soup made into runs: SOUP_DIR=runs/fer2013_vgg_soup -> models/fer2013_vgg_soup, no scoring
	@test -n "$(SOUP_DIR)" || { echo 'usage: make ship-soup SOUP_DIR=runs/fer2013_vgg_soup [MODELS=models]'; exit 2; }
	$(PY) -m train.soup --ship $(SOUP_DIR) --models $(MODELS)

ENSEMBLE ?= fer2013_ensemble
ensemble: $(VENV)/.all-deps ## average shipped models: MEMBERS="models/a=DATA_a models/b=DATA_b" -> models/ENSEMBLE; ARGS="--raw DATA_plain --max-passes 4 --max-mflops 552"
	@test -n "$(MEMBERS)" || { echo 'usage: make ensemble MEMBERS="models/a=data/fer2013 models/b=data/fer2013-arcface"'; exit 2; }
	$(PY) -m train.ensemble $(foreach m,$(MEMBERS),--member $(m)) --name $(ENSEMBLE) --models $(MODELS) $(ARGS)
