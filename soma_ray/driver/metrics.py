"""The driver's ledger as Ray metrics (`ray.util.metrics`) for the dashboard.

Gauges of the ledger's running totals, not counters: the ledger is persistent, so a driver Ray
restarted after a crash reports the same totals instead of starting again from zero.
"""

from __future__ import annotations

from soma_ray.driver.results import Ledger


class DriverMetrics:
    def __init__(self, address: str, network: str) -> None:
        from ray.util.metrics import Gauge

        tags = {"wallet": address, "network": network}
        keys = ("wallet", "network")
        self._totals = {
            "submissions": Gauge("soma_ray_submissions", "data submissions sent (ledger total)", tag_keys=keys),
            "claims": Gauge("soma_ray_claims", "claims paid (ledger total)", tag_keys=keys),
            "fees": Gauge("soma_ray_fees", "transaction fees paid, shannons (ledger total)", tag_keys=keys),
            "bonds_locked": Gauge("soma_ray_bonds_locked", "submission bonds, shannons (ledger total)",
                                  tag_keys=keys),
        }
        self._rewards = Gauge("soma_ray_rewards", "rewards claimed, shannons (ledger total)",
                              tag_keys=(*keys, "role"))
        self._balance = Gauge("soma_ray_balance", "wallet balance, shannons", tag_keys=keys)
        for metric in (*self._totals.values(), self._rewards, self._balance):
            metric.set_default_tags(tags)

    def publish(self, ledger: Ledger, balance: int | None = None) -> None:
        totals = {"submissions": ledger.submissions, "claims": ledger.claims, "fees": ledger.fees,
                  "bonds_locked": ledger.bonds_locked}
        for key, gauge in self._totals.items():
            gauge.set(totals[key])
        rewards = {"submitter": ledger.rewards_as_submitter, "model_owner": ledger.rewards_as_model_owner,
                   "claimer": ledger.claimer_incentives}
        for role, value in rewards.items():
            self._rewards.set(value, tags={"role": role})
        if balance is not None:
            self._balance.set(balance)


__all__ = ["DriverMetrics"]
