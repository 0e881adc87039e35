"""Transfer searched cells to ImageNet, detection (NAS-FPN + RetinaNet) and segmentation (DeepLabv3+).

Modules, one concept each (import the one you need; each imports Keras on its own):

* ``imagenet``: N@P notation, ImageNet-size networks, EfficientNet compound scaling.
* ``flops``: parameter and multiply-add reports (NASNet paper's counting).
* ``backbone``: multi-level feature backbones (cell networks, plain conv nets).
* ``nasfpn``: NAS-FPN merging cells, decoder and its search space.
* ``retinanet``: RetinaNet head, anchors, box coding, focal loss, NMS decoding, mAP.
* ``deeplab``: ASPP and the DeepLabv3+ decoder, mean IoU.
* ``synthetic``: synthetic shapes datasets with boxes and masks.

Distribution strategies live in ``keras_nas.distribute``.
"""
