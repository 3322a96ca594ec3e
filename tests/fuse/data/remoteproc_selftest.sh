#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# Start and stop every remote processor through sysfs, one by one and then
# all together, and report in KTAP. Written for a real board's
# /sys/class/remoteproc (POSIX sh, busybox included); rproctee's tests run it
# unchanged through `rproctee sysfs run`.
#
# Exit status: 0 when every test passed, 1 otherwise, 4 (KSFT_SKIP) when
# there is no remote processor or it cannot be driven from here.

RPROC_CLASS=${RPROC_CLASS:-/sys/class/remoteproc}
TIMEOUT_TENTHS=${TIMEOUT_TENTHS:-50}   # how long a state change may take

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

passed=0
failed=0
test_no=0

ktap_result() {   # ktap_result ok|not-ok DESCRIPTION [DIAGNOSTIC]
	test_no=$((test_no + 1))
	if [ "$1" = ok ]; then
		passed=$((passed + 1))
		echo "ok $test_no $2"
	else
		failed=$((failed + 1))
		echo "not ok $test_no $2"
		[ -n "$3" ] && echo "# $3"
	fi
}

# wait_state DIR WORD: poll DIR/state until it reads WORD or time runs out
wait_state() {
	tenths=0
	while [ "$tenths" -lt "$TIMEOUT_TENTHS" ]; do
		[ "$(cat "$1/state")" = "$2" ] && return 0
		sleep 0.1
		tenths=$((tenths + 1))
	done
	return 1
}

# set_state DIR WORD EXPECTED: write WORD to DIR/state, then wait for EXPECTED
set_state() {
	if ! echo "$2" > "$1/state"; then
		diag="write of '$2' to $1/state failed"
		return 1
	fi
	if ! wait_state "$1" "$3"; then
		diag="$1/state is '$(cat "$1/state")', expected '$3'"
		return 1
	fi
	return 0
}

echo "KTAP version 1"

if [ ! -d "$RPROC_CLASS" ]; then
	echo "1..0 # SKIP no $RPROC_CLASS"
	exit $KSFT_SKIP
fi

rprocs=""
count=0
for dir in "$RPROC_CLASS"/remoteproc*; do
	[ -e "$dir/state" ] || continue
	rprocs="$rprocs $dir"
	count=$((count + 1))
done
if [ "$count" -eq 0 ]; then
	echo "1..0 # SKIP no remote processor in $RPROC_CLASS"
	exit $KSFT_SKIP
fi

# each processor: initial state, start, stop; then start all, stop all
echo "1..$((count * 3 + 2))"

for dir in $rprocs; do
	rproc=${dir##*/}
	name=$(cat "$dir/name")
	state=$(cat "$dir/state")
	if [ "$state" = offline ]; then
		ktap_result ok "$rproc ($name) is offline"
	else
		ktap_result not-ok "$rproc ($name) is offline" "state is '$state'"
	fi
	echo "# $rproc: firmware $(cat "$dir/firmware")"
	diag=""
	if set_state "$dir" start running; then
		ktap_result ok "$rproc start"
	else
		ktap_result not-ok "$rproc start" "$diag"
	fi
	diag=""
	if set_state "$dir" stop offline; then
		ktap_result ok "$rproc stop"
	else
		ktap_result not-ok "$rproc stop" "$diag"
	fi
done

# all together: start every one before checking any
all_ok=ok
diag=""
for dir in $rprocs; do
	echo start > "$dir/state" || { all_ok=not-ok; diag="start of $dir refused"; }
done
for dir in $rprocs; do
	wait_state "$dir" running || { all_ok=not-ok; diag="$dir did not reach running"; }
done
ktap_result $all_ok "all $count started together" "$diag"

all_ok=ok
diag=""
for dir in $rprocs; do
	echo stop > "$dir/state" || { all_ok=not-ok; diag="stop of $dir refused"; }
done
for dir in $rprocs; do
	wait_state "$dir" offline || { all_ok=not-ok; diag="$dir did not reach offline"; }
done
ktap_result $all_ok "all $count stopped together" "$diag"

echo "# Totals: pass:$passed fail:$failed xfail:0 xpass:0 skip:0 error:0"
[ "$failed" -eq 0 ] && exit $KSFT_PASS
exit $KSFT_FAIL
