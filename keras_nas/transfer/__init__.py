"""keras_nas.transfer"""
