"""The epoch review: our wins, misses and near misses, P&L per epoch from the driver's ledger,
rivals near our models, pivot alerts and recommended actions, as Markdown and one self-contained
HTML page with the board's pictures; and the `soma-ray board` / `soma-ray review` commands.

Above both `board` (the snapshots, the pictures) and `driver` (the ledger) in the layers.
Modules: `config` (the `review:` section), `records` (near misses and compute beside the ledger),
`pnl`, `alerts`, `build` (the content), `render` (files), `run` (from the folder; the driver's
epoch hook), `summary` and `commands` (the CLI).
"""
