"""Reading the board (the "outer game"): per-epoch snapshots of the network, what changed between
them, where models and targets sit, who wins, which targets a model or a stake would be assigned,
what a candidate model could earn, and pictures of it all.

Modules, one job each: `snapshot` (take, write, read), `diff`, `landscape`, `winners`,
`simulate` (Monte Carlo over the chain's own target draws and KNN), `opportunity`, `ours` (our
results per epoch), `plots`.
Apart from `snapshot` (the chain, the files) and `plots` (PNG files), all are plain functions over
snapshot data.
"""
