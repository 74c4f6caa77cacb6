#!/usr/bin/env bash
# Looks at a report the way its readers do: headless Chromium screenshots it at a desktop and a
# narrow width, and prints it to PDF on A4 and on Letter; poppler then says how many pages each
# has, whether any is blank (or nearly: a heading alone), and how small the chart's printed text is.
#
#   scripts/report-in-chromium.sh DIR/report.html [OUT]      (OUT defaults to target/report-check)
#
# Needs chromium and poppler-utils (Debian: apt-get install chromium poppler-utils). Prints one
# line per check and exits 1 if a page is blank or the chart's text prints under 8 points.
set -euo pipefail
report=$(realpath "$1")
out=${2:-target/report-check}
mkdir -p "$out"
out=$(realpath "$out")
chrome() { timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "$@" 2>/dev/null; }

for width in 1200 700; do
    chrome --window-size="$width,1400" --screenshot="$out/screen-$width.png" "file://$report"
    echo "screenshot $width px wide: $out/screen-$width.png"
done

status=0
for paper in A4 Letter; do
    # The paper size is the printer's choice: state it as a print dialog would.
    page="$out/report-$paper.html"
    sed "s|</head>|<style>@page { size: $paper; }</style></head>|" \
        "$report" > "$page"
    pdf="$out/report-$paper.pdf"
    chrome --no-pdf-header-footer --print-to-pdf="$pdf" "file://$page"
    pages=$(pdfinfo "$pdf" | awk '/^Pages:/ {print $2}')
    blank=()
    # A page with fewer than four words (a heading left behind) counts as blank.
    for ((p = 1; p <= pages; p++)); do
        if [ "$(pdftotext -f "$p" -l "$p" "$pdf" - | wc -w)" -lt 4 ]; then blank+=("$p"); fi
    done
    # The chart's words: the timeline starts a page with the chart's title (the scenario's name)
    # and ends before the next section, Keys. A word's box spans the font's ascent and descent:
    # 1.117 em in Liberation Sans, 1.164 in DejaVu Sans (what Chromium picks for sans-serif on
    # Debian); dividing by the larger errs small.
    title=$(grep -o '<h1>[^<]*' "$report" | head -1 | sed 's/<h1>//' | awk '{print $1}')
    smallest=$(pdftotext -bbox "$pdf" - | awk -v title="$title" '
        /<page / { page++; first = 1 }
        /<word / { match($0, />[^<]*</); w = substr($0, RSTART + 1, RLENGTH - 2)
                   if (first && page > 1 && w == title) inchart = 1
                   first = 0
                   if (w == "Keys") inchart = 0 }
        /<word / && inchart { match($0, /yMin="[0-9.]+"/); a = substr($0, RSTART + 6, RLENGTH - 7)
                              match($0, /yMax="[0-9.]+"/); b = substr($0, RSTART + 6, RLENGTH - 7)
                              d = (b - a) / 1.164; if (min == "" || d < min) min = d }
        END { printf "%.1f", min }')
    echo "$paper: $pages pages ($(pdfinfo "$pdf" | awk -F': *' '/^Page size/ {print $2}' | head -1) first), blank: ${blank[*]:-none}, smallest chart text ${smallest} pt: $pdf"
    if [ ${#blank[@]} -gt 0 ] || awk -v s="$smallest" 'BEGIN { exit !(s == "" || s < 8) }'; then status=1; fi
done
exit $status
