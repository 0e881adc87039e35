"""Search controllers (ask/tell, keras-tuner independent) and their keras-tuner Oracle adapters."""
