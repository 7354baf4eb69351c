#!/usr/bin/env bash
# Rebuilds the King James Bible corpus (public domain) from Debian's bible-kjv-text package, one chapter per
# document with <|endoftext|> between documents (the tokenizers' added token, id 0), split into the training
# text and the held-out books: Ruth, Esther, Jonah, Mark, Philemon and Jude.
#   bash models/data/build-kjv-corpus.sh OUT_DIR      writes OUT_DIR/kjv-train.txt and OUT_DIR/kjv-heldout.txt
# Needs the `bible` program: apt-get install bible-kjv (it pulls in bible-kjv-text). The committed tokenizer
# models/kjv/tokenizer.json was then trained on the training text alone (1.2 s):
#   bt tokenizer-train --corpus OUT_DIR/kjv-train.txt --vocab 4096 --out models/kjv/tokenizer.json
set -euo pipefail
out="${1:?usage: build-kjv-corpus.sh OUT_DIR}"
command -v bible > /dev/null || { echo "build-kjv-corpus: the bible program is missing: apt-get install bible-kjv" >&2; exit 1; }
mkdir -p "$out"
books=(Genesis Exodus Leviticus Numbers Deuteronomy Joshua Judges Ruth 1Samuel 2Samuel 1Kings 2Kings
  1Chronicles 2Chronicles Ezra Nehemiah Esther Job Psalms Proverbs Ecclesiastes Song Isaiah
  Jeremiah Lamentations Ezekiel Daniel Hosea Joel Amos Obadiah Jonah Micah Nahum Habakkuk Zephaniah Haggai
  Zechariah Malachi Matthew Mark Luke John Acts Romans 1Corinthians 2Corinthians Galatians Ephesians
  Philippians Colossians 1Thessalonians 2Thessalonians 1Timothy 2Timothy Titus Philemon Hebrews
  James 1Peter 2Peter 1John 2John 3John Jude Revelation)
# ("Song" is how bible names the Song of Solomon in a verse spec; "Song of Solomon 2" reads as chapter 1.)
heldout=" Ruth Esther Jonah Mark Philemon Jude "
train="$out/kjv-train.txt" held="$out/kjv-heldout.txt"
: > "$train"; : > "$held"
for book in "${books[@]}"; do
  target="$train"; [[ "$heldout" == *" $book "* ]] && target="$held"
  # Every chapter up to 150 (Psalms has the most) in one call; past the last one, bible prints the last
  # chapter again, so a heading whose number is not the next chapter ends the book.
  specs=(); for ((c = 1; c <= 150; c++)); do specs+=("$book $c:1-999"); done
  bible -l100000 "${specs[@]}" | awk -v separate="$([[ -s "$target" ]] && echo 1 || echo 0)" '
    done { next }  # read to the end rather than exit, so bible never writes into a closed pipe
    /^[^ ].* [0-9]+$/ { n = $NF + 0; if (n != chapter + 1) { done = 1; next }; chapter = n
                        if (separate || chapter > 1) printf "<|endoftext|>"; print; print ""; next }
    /^ *[0-9]+ / { sub(/^ *[0-9]+ /, ""); print }' >> "$target"
done
chapters=$(( $(grep -o '<|endoftext|>' "$train" | wc -l) + $(grep -o '<|endoftext|>' "$held" | wc -l) + 2 ))
echo "build-kjv-corpus: $chapters chapters; $(wc -c < "$train") bytes of training text, $(wc -c < "$held") bytes held out" >&2
