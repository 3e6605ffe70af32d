# callbox: the two commands of the README's Quick start, and helpers.
#   make demo   set up, then run a whole call on this machine
#   make test   set up, then run every test
#   make deb    Debian packages for this machine (target/debian/*.deb)
#   make deb-check   install them into a clean bookworm with apt and check them
#   make deb-arm64   cross-build the arm64 packages, run the binaries under qemu-aarch64
#   make yocto-check static checks of yocto/meta-callbox
#   make lab    boot the installed package in QEMU on real kernel drivers (lab/README.md)
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build test demo lint fmt bench soak clean-demo deb deb-check deb-arm64 yocto-check lab lab-shell web

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --workspace --bins

# cargo builds the binaries the integration tests run (CARGO_BIN_EXE_*) itself; a
# separate `cargo build` first would compile the graph twice (dev features differ).
test: setup
	$(CARGO) test --workspace -- --test-threads=1

demo: build
	$(CARGO) run -q -p callbox-testkit --bin callbox-demo -- --bin-dir target/debug

# Benchmarks print numbers (release build); they assert nothing.
bench: setup
	$(CARGO) bench --bench ring_latency
	$(CARGO) bench --bench call_bench
	. scripts/paths.sh && "$$CALLBOX_VENV/bin/python" scripts/plot-bench.py target/bench

# The caller web app (hub/web): rebuild hub/web/dist from the pinned lockfile (npm).
# dist/ is checked in, so building the hub never needs npm.
web:
	cd hub/web && npm ci --no-audit --no-fund && npm run build

# 500 sequential calls (release build; SOAK_CALLS=N for another count): the box's RSS,
# fds and threads after each call in target/soak/soak.csv, plotted to soak.png.
SOAK_CALLS ?= 500
soak: setup
	CALLBOX_SOAK_CALLS=$(SOAK_CALLS) $(CARGO) test --release --test soak -- --nocapture
	. scripts/paths.sh && "$$CALLBOX_VENV/bin/python" scripts/plot-soak.py \
	  --title "callbox soak: $(SOAK_CALLS) calls, release build, $$(nproc) cores, $$(date +%F)"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-demo:
	rm -rf .demo

deb: setup
	bash scripts/deb.sh

deb-check: deb
	bash scripts/deb-check.sh

# arm64 (Raspberry Pi OS 64-bit): set-up adds the cross toolchain and a cached bookworm
# arm64 sysroot (~1.1 GB), then cross-build, run both binaries under qemu-aarch64
# (--version, callbox check, callbox-hub serve) and package target/debian/*_arm64.deb.
deb-arm64:
	CALLBOX_ARM64=1 bash scripts/setup.sh
	bash scripts/cross-arm64.sh --deb

# Static checks of the Yocto layer: crates in sync with Cargo.lock, oelint-adv, kas schema.
yocto-check:
	bash scripts/check-yocto.sh

# The installed box on real kernel drivers (vivid, snd-aloop, gpio-sim, vkms) in QEMU:
# builds (cached) the kernel modules and a bookworm root disk with the .deb installed by
# apt, boots it and runs the checks in lab/checks/. Needs root.
lab: deb
	bash lab/lab.sh

# A root console in the lab guest.
lab-shell:
	bash lab/boot.sh --shell
