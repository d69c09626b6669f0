#!/usr/bin/env bash
# `make demo`: index the sample videos (or $VIDEOS), show a few searches, then open the app.
# Offline, the configured CLIP weights cannot be downloaded: the demo then falls back to random
# weights in a small architecture, in its own data dir, and says that rankings mean nothing then.
set -uo pipefail
VIDEOS=${VIDEOS:-../shared/data/videos}
if [ ! -d "$VIDEOS" ]; then
  echo "demo: no video folder at $VIDEOS; run: make demo VIDEOS=/path/to/videos" >&2
  exit 2
fi

evr index "$VIDEOS"
rc=$?
if [ $rc -eq 3 ]; then
  cat >&2 <<'MSG'

demo: the configured CLIP weights are not available (no network, nothing in the cache).
demo: falling back to RANDOM weights (ViT-B-32, clip.pretrained = "none") in data/demo-random-weights.
demo: indexing, storage and search all run for real, but text rankings are NOT meaningful
demo: without trained weights. Put a weights file path in clip.pretrained, or run once with
demo: network access, for real results.

MSG
  export EVR_CLIP_MODEL=ViT-B-32 EVR_CLIP_PRETRAINED=none EVR_STORAGE_DATA_DIR=data/demo-random-weights
  evr index "$VIDEOS"
  rc=$?
fi
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then  # 1: some files failed, the rest is indexed
  exit $rc
fi

echo
evr stats
for q in "a man riding a bicycle at night" "people walking on a street"; do
  echo
  echo "\$ evr search \"$q\" --k 5"
  evr search "$q" --k 5 2>/dev/null
done
echo
echo "\$ evr search \"người đàn ông đi xe đạp\" --k 5   (Vietnamese: stderr says which encoder read it)"
evr search "người đàn ông đi xe đạp" --k 5
echo
echo "\$ evr search --like 1 --k 3   (frames that look like keyframe 1)"
evr search --like 1 --k 3 2>/dev/null
echo
echo "\$ evr summarize 1"
evr summarize 1 2>/dev/null
video=$(evr search --like 1 --k 1 --json 2>/dev/null | python -c 'import json, sys; print(json.load(sys.stdin)[0]["video_id"])')
echo
echo "\$ evr shots $video   (its shots: start, end, keyframes)"
evr shots "$video" 2>/dev/null
echo
evr ui
