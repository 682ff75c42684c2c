#!/usr/bin/env bash
# Install the WordNet 3.0 data that nltk's METEOR needs, from Debian's `wordnet-base` package.
#
# No PyPI package ships WordNet, and nltk.download() needs network access to GitHub, so rlkit takes
# the data from Debian (`apt-get download wordnet-base` + `dpkg -x`, no dpkg database change) and lays
# it out as nltk expects: <NLTK_DATA_DIR>/corpora/wordnet/{data,index}.{noun,verb,adj,adv}, *.exc,
# lexnames and index.sense (generated here: Debian ships neither; lexnames is the fixed WordNet 3.0
# table of lexicographer files, see lexnames(5WN); index.sense is derived from the data/index files as
# senseidx(5WN) specifies, and nltk's reader needs it at load time).
#
# Target directory (first match wins):
#   1. the first argument:                   scripts/install_wordnet.sh /opt/nltk_data
#   2. the first entry of $NLTK_DATA          (nltk searches $NLTK_DATA first)
#   3. /usr/local/share/nltk_data when run as root (in nltk's default search path for every user),
#      otherwise ~/nltk_data (in nltk's default search path for this user).
# If you pass a directory that is not in nltk's default search path, export NLTK_DATA=<dir>.
# Idempotent: exits early when the corpus is already complete there. Needs apt (Debian/Ubuntu).
set -euo pipefail

if [[ $# -ge 1 && -n "$1" ]]; then
  TARGET="$1"
elif [[ -n "${NLTK_DATA:-}" ]]; then
  TARGET="${NLTK_DATA%%:*}"
elif [[ "$(id -u)" -eq 0 ]]; then
  TARGET=/usr/local/share/nltk_data
else
  TARGET="$HOME/nltk_data"
fi
WN="$TARGET/corpora/wordnet"
REQUIRED=(data.noun data.verb data.adj data.adv index.noun index.verb index.adj index.adv
          noun.exc verb.exc adj.exc adv.exc lexnames index.sense)

complete=1
for f in "${REQUIRED[@]}"; do [[ -s "$WN/$f" ]] || complete=0; done
if [[ $complete -eq 1 ]]; then
  echo "WordNet already installed in $WN"
  exit 0
fi

command -v apt-get >/dev/null || { echo "error: apt-get not found; this script needs a Debian/Ubuntu system" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# apt's sandbox user cannot write to a root-owned mktemp dir; let it in (harmless when not root).
chmod 755 "$WORK"
if ! apt-get download wordnet-base >/dev/null 2>&1; then
  echo "apt-get download failed; refreshing package lists (apt-get update) and retrying" >&2
  if [[ "$(id -u)" -eq 0 ]]; then apt-get update -qq; else echo "error: run as root or run 'apt-get update' first" >&2; exit 1; fi
  apt-get download wordnet-base
fi
dpkg -x wordnet-base_*.deb extracted
SRC=extracted/usr/share/wordnet
[[ -s "$SRC/data.noun" ]] || { echo "error: wordnet-base did not contain usr/share/wordnet/data.noun" >&2; exit 1; }

mkdir -p "$WN"
cp "$SRC"/data.* "$SRC"/index.* "$SRC"/*.exc "$WN"/
for extra in cntlist.rev sents.vrb sentidx.vrb; do [[ -f "$SRC/$extra" ]] && cp "$SRC/$extra" "$WN"/; done
[[ -f extracted/usr/share/doc/wordnet-base/copyright ]] && cp extracted/usr/share/doc/wordnet-base/copyright "$WN/LICENSE"

# lexnames: "<file number>\t<name>\t<syntactic category 1=noun 2=verb 3=adj 4=adv>" (WordNet 3.0).
python3 - "$WN/lexnames" <<'PY'
import sys
names = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
         "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
         "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
         "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
         "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
         "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
         "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
         "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
cat = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
with open(sys.argv[1], "w") as fh:
    for i, n in enumerate(names):
        fh.write(f"{i:02d}\t{n}\t{cat[n.split('.')[0]]}\n")
PY

# index.sense: "sense_key synset_offset sense_number tag_cnt", sorted by sense key (senseidx(5WN)).
python3 - "$WN" <<'PY2'
import os, re, sys
wn = sys.argv[1]
ss_num = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}
pos_files = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
synsets = {}  # (pos_file_letter, offset) -> (ss_type, lex_filenum, [(lemma, lex_id)], head_offset)
for name, letter in pos_files.items():
    with open(os.path.join(wn, "data." + name), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split()
            off, lexfile, ss_type, w_cnt = f[0], int(f[1]), f[2], int(f[3], 16)
            words = [(re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower(), int(f[5 + 2 * i], 16)) for i in range(w_cnt)]
            k = 4 + 2 * w_cnt
            head = None
            for j in range(int(f[k])):
                sym, poff, ppos = f[k + 1 + 4 * j], f[k + 2 + 4 * j], f[k + 3 + 4 * j]
                if ss_type == "s" and sym == "&" and ppos == "a" and head is None:
                    head = poff
            synsets[(letter, off)] = (ss_type, lexfile, words, head)
sense_no = {}
for name, letter in pos_files.items():
    with open(os.path.join(wn, "index." + name), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            f = line.split()
            lemma, n_syn, p_cnt = f[0].lower(), int(f[2]), int(f[3])
            offs = f[4 + p_cnt + 2:4 + p_cnt + 2 + n_syn]
            for i, off in enumerate(offs, 1):
                sense_no[(letter, off, lemma)] = i
tags = {}
cnt = os.path.join(wn, "cntlist.rev")
if os.path.exists(cnt):
    with open(cnt, encoding="utf-8") as fh:
        for line in fh:
            f = line.split()
            if len(f) == 3:
                tags[f[0]] = f[2]
rows = []
for (letter, off), (ss_type, lexfile, words, head) in synsets.items():
    head_word, head_id = "", ""
    if ss_type == "s" and head is not None:
        hw, hid = synsets[("a", head)][2][0]
        head_word, head_id = hw, f"{hid:02d}"
    for lemma, lex_id in words:
        key = f"{lemma}%{ss_num[ss_type]}:{lexfile:02d}:{lex_id:02d}:{head_word}:{head_id}"
        rows.append((key, off, sense_no.get((letter, off, lemma), 0), tags.get(key, "0")))
rows = sorted(set(rows))  # a synset may list one lemma in two spellings (A / a): one key
with open(os.path.join(wn, "index.sense"), "w", encoding="utf-8") as fh:
    for key, off, n, t in rows:
        fh.write(f"{key} {off} {n} {t}\n")
PY2

echo "WordNet 3.0 installed in $WN"
case ":${NLTK_DATA:-}:/usr/local/share/nltk_data:/usr/share/nltk_data:$HOME/nltk_data:" in
  *":$TARGET:"*) ;;
  *) echo "note: $TARGET is not in nltk's default search path; export NLTK_DATA=$TARGET" ;;
esac
