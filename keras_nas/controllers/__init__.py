"""keras_nas.controllers"""
