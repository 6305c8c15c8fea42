# The experiment's plot, drawn by experiment.py report:
#   gnuplot -e "datadir='D'; out='F.png'; servers='grove threaded ...'; xmin=6; xmax=15000" seed-experiment.gp
# D holds <client>-<server>.dat files (concurrency req/s failed rss status).
# Four panels: req/s and failed requests against concurrency (log scale),
# without keep-alive (ab solid, grove-load dashed) and with it (wrk solid,
# grove-load -k dashed); one colour per server; req/s on a log scale.
set terminal pngcairo size 1400,1100 font "sans,10"
set output out
set datafile commentschars "#"
set logscale x 10
set xrange [xmin:xmax]
set grid
set key below horizontal font ",10"
set xlabel "concurrency (connections = server pool size)"
set format y "%g"
file(client, s) = datadir . "/" . client . "-" . s . ".dat"
have(client, s) = system("test -s '" . file(client, s) . "' && echo 1 || echo 0") + 0
colour(i) = word("#1b9e77 #d95f02 #7570b3 #e7298a #66a61e #e6ab02 #a6761d #666666", (i - 1) % 8 + 1)
n = words(servers)
set multiplot layout 2,2 title "seed page, server on one core, client on the other"

do for [panel = 1:4] {
    ka = (panel > 2)
    c1 = ka ? "wrk" : "ab"
    c2 = ka ? "grove-load-k" : "grove-load"
    col = (panel % 2 == 1) ? 2 : 3
    set title (ka ? "keep-alive: " : "no keep-alive: ") . ((col == 2) ? "requests/s" : "failed requests") . \
        "  (solid: " . c1 . ", dashed: " . c2 . ")"
    set ylabel ((col == 2) ? "requests/s (log scale)" : "failed requests (of those asked)")
    # req/s spans 500 to 150,000 here: log scale; failures from 0: linear.
    if (col == 2) { set logscale y 10; set yrange [*:*] } else { unset logscale y; set yrange [0:*] }
    # Only the files that exist: a server or client that was skipped has none.
    cmd = ""
    do for [k = 1:2] {
        cl = (k == 1) ? c1 : c2
        do for [i = 1:n] {
            s = word(servers, i)
            if (have(cl, s)) {
                # The key names each server once (its colour); the panel's title
                # says which client is solid and which dashed.
                cmd = cmd . (cmd eq "" ? "" : ", ") . sprintf("'%s' using 1:%d with linespoints lw 2 dt %d pt %d lc rgb '%s' %s", \
                    file(cl, s), col, k, (k == 1) ? 7 : 6, colour(i), (k == 1 || !have(c1, s)) ? "title '" . s . "'" : "notitle")
            }
        }
    }
    # A panel with no runs (its clients skipped) still draws, empty and
    # saying so: autoscaling over no points is an error in gnuplot.
    if (cmd eq "") {
        unset logscale y; set yrange [0:1]
        set label 1 "no runs" at graph 0.5, 0.5 center
        cmd = "NaN notitle"
    }
    eval("plot " . cmd)
    unset label 1
}
unset multiplot
