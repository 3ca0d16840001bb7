# Latency vs throughput of the closed-loop runs of quiver-bench-lookup, one
# panel per workload (called by bench/run with datafile, outfile, title).
set terminal pngcairo size 1400,1000 noenhanced font ",10"
set output outfile
set multiplot layout 2,2 title title
set logscale y
set grid
set key top left
set xlabel "throughput (calls/s)"
set ylabel "latency (µs)"
# One awk-filtered series per line, so the points of a series are joined.
series(w, sys) = sprintf("< awk '$1 == \"%s\" && $2 == \"%s\" && $3 == \"closed\"' %s", w, sys, datafile)
do for [w in "1x50 1x250 10x50 100x50"] {
  set title w
  plot \
    series(w, "quiver") using 5:7 with linespoints lw 2 pt 7 lc rgb "#1b9e77" title "Quiver p99", \
    series(w, "quiver") using 5:6 with linespoints dt 2 pt 6 lc rgb "#1b9e77" title "Quiver p50", \
    series(w, "redis") using 5:7 with linespoints lw 2 pt 5 lc rgb "#d95f02" title "Redis (Feast layout) p99", \
    series(w, "redis") using 5:6 with linespoints dt 2 pt 4 lc rgb "#d95f02" title "Redis (Feast layout) p50"
}
unset multiplot
