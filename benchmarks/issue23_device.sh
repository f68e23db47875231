#!/usr/bin/env bash
# Issue 23's speed measurements, all in ONE device session (one machine, one card), in priority order:
#   1. training at ~24 GiB: the harness and every stock variant, each in its own process (liger's class patches and
#      the allocator's state do not leak from one configuration into the next); 30 timed steps after 3 warm-up steps;
#      the harness and the two best stock loops profiled for 3 more steps (--profile)
#   2. training at ~8 GiB: the same
#   3. generation at equal memory: eval_throughput.py --budgets, one process per budget
# (in the order 24 GiB training, 24 GiB generation, 8 GiB training, 8 GiB generation, 70 GiB generation: the most
# asked-for first, should the device time run out)
# The whole run takes longer than one device call's limit, so it runs detached (setsid) and writes under $RES;
# later calls on the warm machine wait for it (`bash benchmarks/issue23_device.sh wait`) and pack $RES into $OUT.
# Needs, carried: .dev/p_site.tar.xz (TRL, datasets, bitsandbytes: benchmarks/device_pack.sh) and liger-kernel's wheel.
#   bash benchmarks/issue23_device.sh start [PART...]  # unpack, then run detached; returns at once. PARTs: train24
#       eval24 train8 eval8 eval70 (default: all, in that order), levers24 levers8 (bf16 unquantised weights on
#       both sides, with the harness as it is; ~450 s and ~350 s, estimates), compile24 compile8 (train.compile on
#       both sides; ~550 s and ~400 s with the compilation, estimates); one device session may hold only some
#       (trainN=SPEC,SPEC: those configurations at N GiB, e.g. train24=harness:budget=24,stock:B=40:group for a short
#       session; profile24: 5 timed steps, for the profiles only; eval24m eval70m: generation with
#       eval.merge_adapter, static+merged and compiled+merged, with dynamic and static unmerged as the call's
#       anchors)
#   bash benchmarks/issue23_device.sh wait S  # wait up to S seconds (default 560) and copy what exists to $OUT
# Device time each part needs, seen on an H200 on 2026-12-07 (from the times the results appeared): train24 ~700 s
# (with writing the model once), train8 ~450 s, eval8's stock side ~150 s; ESTIMATES from those step times:
# profile24 ~230 s, levers24 ~450 s, levers8 ~350 s, each eval part 150-300 s; plus the machine's start. A failed
# start costs ~90 s of the session's device time. eval24 ran on an H100 on 2026-12-07 (RESULTS.md). Next, in one
# session: start eval70m eval8 compile24 eval24m levers24 compile8 levers8.
set -uo pipefail
RES=/tmp/issue23
case "${1:-}" in
start)
  mkdir -p /tmp/site "$RES"
  tar xJf .dev/p_site.tar.xz -C /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .dev/liger_kernel-*.whl
  shift; setsid nohup bash "$0" run "${@:-train24 eval24 train8 eval8 eval70}" >"$RES/log" 2>&1 < /dev/null &
  echo "started"; exit 0 ;;
wait)
  mkdir -p "${OUT:?}"
  # results packed every 10 s into ONE archive (a call brings back at most 8 files), so a call stopped at its limit
  # keeps them: tar xzf issue23.tgz
  pack() { tar czf "$OUT/issue23.tgz.part" --exclude=./log -C "$RES" . && mv "$OUT/issue23.tgz.part" "$OUT/issue23.tgz"
           tail -c 200000 "$RES/log" | tr '\r' '\n' | grep -v 'Loading weights' > "$OUT/log.tail"; }
  for _ in $(seq $(( ${2:-560} / 10 ))); do
    pack; [ -f "$RES/done" ] && break; sleep 10
  done
  pack; tail -c 3000 "$OUT/log.tail"; exit 0 ;;
run) shift ;;
*) echo "usage: $0 start|wait" >&2; exit 2 ;;
esac
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$RES/gpu.csv"
python3 benchmarks/train_throughput.py --model /tmp/llama_7b --make-model 7b --configs ""
train() {  # budget, then specs
  local budget=$1; shift
  for spec in "$@"; do
    local prof=0; case $spec in harness*|*:group|*:group:*) prof=3 ;; esac
    python3 benchmarks/train_throughput.py --model /tmp/llama_7b --steps ${STEPS:-30} --warmup 3 --profile $prof \
      --configs "$spec" --out "$RES/train_${budget}gib/$(echo "$spec" | tr ':=+' '___')"
  done
  python3 benchmarks/train_throughput.py --table "$RES"/train_${budget}gib/*/train_throughput.json \
    | tee "$RES/train_${budget}gib/table.txt"
}
# ours once per eval.kv_cache setting, "compiled" last: at 8 GiB (the 4-bit base) it traces bitsandbytes' layers,
# untried on CUDA (dynamo traced them without a graph break in training on the CPU, 2026-12-08)
# (eval24m: with eval.merge_adapter, the unmerged dynamic and static caches as this call's anchors)
evalb() { python3 benchmarks/eval_throughput.py --budgets "$1" --prompts 256 --out "$RES/eval_${1}gib${2:-}.json" \
  --ours-caches "${3:-dynamic,static,compiled}"; }
for part in $@; do
  case $part in
    train24) train 24 harness:budget=24 stock:B=40:group stock+liger:B=48:group trl+liger:B=42:L=512 ;;
    train8) train 8 harness:budget=8 stock:B=6:group stock+liger:B=8:group trl+liger:B=8:L=512 ;;
    profile24) STEPS=5 train 24 harness:budget=24 stock:B=40:group ;;  # where the step's time goes, no rates to quote
    # the float32 upcast of the unquantised weights dropped on both sides (train.unquantised_dtype=compute; RESULTS.md
    # "Where the step's time goes"), against the harness as it is, all in this call; stock+liger at a batch that fits
    levers24) train 24 harness:budget=24 harness:budget=24:bf16norms stock+liger:B=42:group \
      stock+liger:B=56:group:bf16norms ;;
    levers8) train 8 harness:budget=8 harness:budget=8:bf16norms trl+liger:B=10:L=512 stock+liger:B=8:group:bf16norms ;;
    # train.compile=layers on both sides (regional compilation of the decoder layers), with and without the upcast
    compile24) train 24 harness:budget=24 harness:budget=24:compile harness:budget=24:bf16norms:compile \
      stock:B=40:group:compile stock+liger:B=42:group:compile ;;
    compile8) train 8 harness:budget=8 harness:budget=8:compile trl+liger:B=8:L=512 stock+liger:B=8:group:compile ;;
    train*=*) b=${part%%=*}; IFS=, read -ra specs <<< "${part#*=}"; train "${b#train}" "${specs[@]}" ;;  # trainN=spec,spec
    eval24|eval8|eval70) evalb "${part#eval}" ;;
    eval24m|eval70m) b=${part#eval}; evalb "${b%m}" _merged dynamic,static,static+merged,compiled+merged ;;
    *) echo "unknown part $part" ;;
  esac
done
touch "$RES/done"
