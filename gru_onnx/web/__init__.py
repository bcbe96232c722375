"""ONNX files in JavaScript: onnxruntime-web in a browser and onnxruntime-node (issue 21).

:mod:`gru_onnx.web.setup` installs and finds the runtimes (``gru-onnx setup web``),
:mod:`gru_onnx.web.bundle` writes a static bundle that runs a file in any browser
(``gru-onnx package FILE --web DIR``), :mod:`gru_onnx.web.wire` is the byte format the runners
(:mod:`gru_onnx.runners.node`, :mod:`gru_onnx.runners.web`) exchange tensors in. ``assets/``
holds the JavaScript: ``gru-stream.js`` (the twin of :class:`gru_onnx.StreamingSession`), the
bundle's ``index.html``, the runners' page and the Node.js driver. Nothing here needs Node.js or
a browser to import.
"""
