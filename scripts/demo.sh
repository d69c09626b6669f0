#!/usr/bin/env bash
# `make demo`: index a few of the sample videos first (on-screen text, people, cuts: every
# analyzer at work), show a few searches, then open the app at once while the rest of the
# videos (or $VIDEOS) are indexed in the background; the app says how far that run is and finds
# each new video as it is committed. Offline, the configured CLIP weights cannot be downloaded:
# the demo then falls back to random weights in a small architecture, in its own data dir, says
# that rankings mean nothing then, and writes data/demo.toml for the CLI. DEMO_NO_APP=1 indexes
# everything in the foreground and stops before the app (tests).
set -uo pipefail
VIDEOS=${VIDEOS:-../shared/data/videos}
if [ ! -d "$VIDEOS" ]; then
  echo "demo: no video folder at $VIDEOS; run: make demo VIDEOS=/path/to/videos" >&2
  exit 2
fi
# The first set, when the sample videos are there, short enough to index in about a minute on
# two cores: a counter (text on screen, hard cuts), baseball players (people) and a person
# signing a word (a pose). The pedestrians of vtest.avi, the people analyzer's best show, take
# three minutes on such a machine: they come with the rest.
FIRST=()
for clip in scene_cuts/counter.mp4 msrvtt/video7021.mp4 asl_gestures/walk.mkv; do
  [ -f "$VIDEOS/$clip" ] && FIRST+=("$VIDEOS/$clip")
done

# Offline the configured weights are missing: explain the fallback before anything fails, and
# leave a config file that points every later `evr` (and the app) at the fallback's index.
DEMO_CONFIG="$PWD/data/demo.toml"
fall_back() {
  cat >&2 <<'MSG'

demo: the configured CLIP weights are not available (no network, nothing in the cache).
demo: falling back to RANDOM weights (ViT-B-32, clip.pretrained = "none") in data/demo-random-weights.
demo: indexing, storage and search all run for real, but text rankings are NOT meaningful
demo: without trained weights. Put a weights file path in clip.pretrained, or run once with
demo: network access, for real results.
MSG
  mkdir -p data
  cat > "$DEMO_CONFIG" <<'TOML'
# Written by `make demo`: the built-in settings (those of config.toml) with random CLIP weights
# and the demo's own index. Use it with:  export EVR_CONFIG=data/demo.toml  (or evr --config ...)
[clip]
model = "ViT-B-32"
pretrained = "none"

[storage]
data_dir = "demo-random-weights"   # relative to this file: data/demo-random-weights
TOML
  export EVR_CONFIG="$DEMO_CONFIG"
  echo "demo: wrote $DEMO_CONFIG; to use the CLI on the demo's index:  export EVR_CONFIG=$DEMO_CONFIG" >&2
  echo >&2
}

fell_back=""
if ! python -c 'import sys; from evr.ui.config import load_config; from evr.indexer.encoders import weights_status
sys.exit(0 if weights_status(load_config().index.clip)[0] else 3)' 2>/dev/null; then
  fall_back
  fell_back=1
fi
seconds() { python -c 'import time; print(f"{time.time():.1f}")'; }
started=$(seconds)
if [ -n "${DEMO_NO_APP:-}" ] || [ ${#FIRST[@]} -eq 0 ]; then
  first=("$VIDEOS")  # everything now: no app to open meanwhile
else
  first=("${FIRST[@]}")
  echo "demo: indexing a first set now (${FIRST[*]}), the rest in the background once the app is open" >&2
fi
evr index "${first[@]}"
rc=$?
if [ $rc -eq 3 ] && [ -z "$fell_back" ]; then  # the weights were there but did not load
  fall_back
  fell_back=1
  evr index "${first[@]}"
  rc=$?
fi
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then  # 1: some files failed, the rest is indexed
  exit $rc
fi
echo "demo: the first set took $(python -c "print(round($(seconds) - $started))") s to index" >&2

echo
evr stats
echo
echo "\$ evr search \"people walking on a street\" --k 5"
evr search "people walking on a street" --k 5 2>/dev/null
echo
echo "\$ evr search --ocr frame --k 3   (frames whose on-screen text says \"frame\": no CLIP needed)"
evr search --ocr frame --k 3 2>/dev/null
echo
echo "\$ evr search --like 1 --k 3   (frames that look like keyframe 1)"
evr search --like 1 --k 3 2>/dev/null
video=$(evr search --like 1 --k 1 --json 2>/dev/null | python -c 'import json, sys; print(json.load(sys.stdin)[0]["video_id"])')
echo
echo "\$ evr shots $video   (its shots: start, end, keyframes)"
evr shots "$video" 2>/dev/null
if [ -n "$fell_back" ]; then
  echo
  echo "demo: the CLI finds this index with:  export EVR_CONFIG=$DEMO_CONFIG"
fi
if [ -n "${DEMO_NO_APP:-}" ]; then
  exit 0
fi
echo
mkdir -p data
log="$PWD/data/demo-index.log"
echo "demo: indexing the rest of $VIDEOS in the background (progress: $log; the app shows it too)" >&2
evr index "$VIDEOS" --no-progress >"$log" 2>&1 &
indexer=$!
trap 'kill $indexer 2>/dev/null' EXIT INT TERM  # Ctrl+C stops the app and the indexer
evr ui
