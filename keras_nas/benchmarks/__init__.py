"""keras_nas.benchmarks"""
