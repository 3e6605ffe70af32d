#!/bin/bash
# Runs in the lab's guest (lab/lab.sh): everything make lab checks inside the VM.
#  1. hardware.sh: the drivers, the device groups, callbox.service READY on them;
#  2. the daemon's gpiocdev tests (callbox-lib-tests, the host's `cargo test --lib`
#     binary) against the guest's gpio-sim chip: skipping counts as a failure here;
#  3. call-guest.sh, when the host set up a call (call/env): the guest half of the call.
# Exit status: the number of failed parts.
set -u
cd "$(dirname "$0")" || exit 1
./hardware.sh
hw=$?
gpio=0
if [ -f ./callbox-lib-tests ]; then
  printf '\n=== the daemon'"'"'s gpiocdev tests on the gpio-sim chip\n'
  chmod +x ./callbox-lib-tests
  out=$(./callbox-lib-tests gpio::cdev:: --nocapture --test-threads=1 2>&1)
  gpio=$?
  echo "$out" | grep -v '^$'
  if echo "$out" | grep -q '^skipped'; then
    echo "FAIL the gpiocdev tests skipped in the lab, where a gpio-sim chip exists"
    gpio=1
  elif ! echo "$out" | grep -q 'test result: ok. [1-9]'; then
    echo "FAIL no gpiocdev test ran (filter gpio::cdev::)"
    gpio=1
  elif [ "$gpio" = 0 ]; then
    echo "PASS gpiocdev tests against gpio-sim ($(echo "$out" | grep -o '[0-9]* passed' | tail -1))"
  else
    echo "FAIL gpiocdev tests (exit $gpio)"
  fi
fi
call=0
if [ -f call/env ]; then
  printf '\n=== the call (guest half; the host half is lab/call_scenario.py)\n'
  ./call-guest.sh
  call=$?
fi
echo "lab-guest: hardware $hw, gpiocdev $gpio, call $call"
exit $((hw + gpio + call))
