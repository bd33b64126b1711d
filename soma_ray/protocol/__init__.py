"""Pure SOMA protocol knowledge (no I/O). Everything else imports rules from here.

One job per module, each citing docs/protocol.md (§): `constants` (v5 parameters, data contract),
`architecture` (model shapes), `commitments` (hashes, ids), `assignment` (KNN), `difficulty`
(threshold, reward per target, epoch budget), `fees`, `bond`, `windows` (commit/reveal, audit and
claim epochs), `rewards` (splits), `slashing`, `staking` (withdrawals, commission rates), `audit` (re-scoring tolerance).
"""
