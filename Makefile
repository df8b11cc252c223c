# make run   : set everything up, then run the main job
# make test  : set everything up, then run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch and torchvision must come as one matching pair from the package index: the machine's
# local CPU-only torch wheel does not match the index's torchvision (`torchvision::nms does not exist`).
TORCH_PAIR := torch==2.13.0 torchvision==0.28.0
STAMP  := $(VENV)/.installed

.PHONY: install run test studio bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --isolated --quiet $(TORCH_PAIR)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

run: $(STAMP)
	$(PY) train.py experiment=met_cpu

# Two test processes of one thread each keep both cores busy without oversubscribing them.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

studio: $(STAMP)
	$(PY) studio.py

bench: $(STAMP)
	$(PY) benchmarks/bench_networks.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) logs outputs .pytest_cache
