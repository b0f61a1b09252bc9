#!/bin/bash
# Runs inside the VM test lane's guest, chrooted into the host's root (read-only over 9p), as
# started by scripts/vm/init. Loads the kernel modules tsrun's tests need from the unpacked
# Debian kernel, then runs jest on the compiled test files listed by the host and writes jest's
# JSON report to the results share (/run/tsrun-vm). Its exit status is jest's, or 90 when a
# required module did not load (jest then does not run: the host reports that instead).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 HOME=/tmp/home
mkdir -p "$HOME"
out=/run/tsrun-vm
# shellcheck source=/dev/null
source "$out/vm.env"
say() { echo "tsrun-vm: $*"; }

kmod() { modprobe -d "$TSRUN_VM_KDIR" -S "$TSRUN_VM_KVER" "$@"; }

# Required: what the lane exists for (ipvlan) and what tsrun's data path and nft rules use in every
# mode (veth, bridge, macvlan; nat, masquerade, ct status/state, fib daddr type local). A missing
# one fails the lane before any test runs, so a test can never be skipped for lack of it.
required=(ipvlan veth bridge macvlan nf_tables nf_conntrack nft_ct nft_nat nft_chain_nat nft_masq
  nft_fib_inet nft_fib_ipv4 nft_fib_ipv6)
# Optional: other modes' modules, loaded up front so a test of them behaves as on a full host.
# The kernel would also request any of them on demand (see the modprobe helper in init).
optional=(vxlan overlay dummy nft_redir nft_reject_inet nft_limit nft_tproxy)
missing=()
for m in "${required[@]}"; do kmod "$m" || missing+=("$m"); done
for m in "${optional[@]}"; do kmod "$m" 2>/dev/null || say "optional module $m did not load"; done
if [ ${#missing[@]} -ne 0 ]; then
  say "required modules did not load: ${missing[*]}"
  exit 90
fi
say "modules loaded: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"

# The guest's own root network namespace (not the machine's: the VM has no network device at
# all); tests still build their own namespaces as on the host.
ip link set lo up

cd "$TSRUN_VM_PROJECT" || exit 91
mapfile -t tests <"$out/tests.list"
say "jest: ${tests[*]}"
# The project's jest.config.js only matches unit/ and integration/; the lane runs exactly the
# files it was given, wherever they live under dist/. The guest CPU is emulated (no KVM here), so
# a test gets far longer than on the host.
config=$(printf '{"rootDir":"%s/dist","transform":{},"testEnvironment":"node","testMatch":["**/*.test.js"],"testTimeout":300000}' "$TSRUN_VM_PROJECT")
# CI=true: the serial console is a terminal, and jest would redraw its interactive status on it.
export TSRUN_VM=1 CI=true
# The start-up snapshots in dist/ were built by the host's Node on the host's CPU; V8 refuses them
# in this guest (qemu's emulated CPU gives it another configuration: "Failed to load the startup
# snapshot because it was built with a different version of V8 or with different V8
# configurations", exit 14), so tsrun runs from the plain bundles here.
export TSRUN_NO_SNAPSHOT=1
node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
  --ci --runInBand --config "$config" --json --outputFile="$out/jest.json" \
  --runTestsByPath "${tests[@]}" 2>&1
