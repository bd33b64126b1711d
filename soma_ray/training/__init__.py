"""Ray Train + DeepSpeed training of the V1 architecture on the scoring contract.

`run_training(TrainConfig)` trains (or resumes) a run and exports its best checkpoint;
`export_checkpoint` turns any checkpoint into commit artifacts; `run_sweep` searches
hyperparameters with Ray Tune.
"""
