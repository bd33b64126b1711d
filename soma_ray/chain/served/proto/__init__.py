"""soma-ray's own `.proto` definitions of the soma.rpc messages and services soma-sdk 0.1.15 uses.

No generated code lives here: `soma_ray.chain.served.messages.rpc()` compiles these files with
grpcio-tools at run time (in memory) the first time the served network needs them.
"""
