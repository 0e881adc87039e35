"""keras_nas.blocks"""
