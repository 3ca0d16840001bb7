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
do for [w in "1x50 1x250 10x50 100x50"] {
  set title w
  plot \
    datafile using ((strcol(1) eq w && strcol(2) eq "quiver" && strcol(3) eq "closed") ? $5 : 1/0):7 \
      with linespoints lw 2 pt 7 lc rgb "#1b9e77" title "Quiver p99", \
    datafile using ((strcol(1) eq w && strcol(2) eq "quiver" && strcol(3) eq "closed") ? $5 : 1/0):6 \
      with linespoints dt 2 pt 6 lc rgb "#1b9e77" title "Quiver p50", \
    datafile using ((strcol(1) eq w && strcol(2) eq "redis" && strcol(3) eq "closed") ? $5 : 1/0):7 \
      with linespoints lw 2 pt 5 lc rgb "#d95f02" title "Redis (Feast layout) p99", \
    datafile using ((strcol(1) eq w && strcol(2) eq "redis" && strcol(3) eq "closed") ? $5 : 1/0):6 \
      with linespoints dt 2 pt 4 lc rgb "#d95f02" title "Redis (Feast layout) p50"
}
unset multiplot
