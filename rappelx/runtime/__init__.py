"""Runtime: the engine, the stores (in-memory and Postgres), dispatcher, workers, client."""
