"""Images for vision models: attached images decoded safely, and run through a vision
projector (mmproj) with llama.cpp's multimodal library (mtmd).

Interface:

- ``images.load_image(path | bytes) -> DecodedImage`` (RGB pixels, see `app.engine.types`);
  ``ImageError(reason, name)`` for empty, too big, truncated or damaged files, non-images and
  decompression bombs (the header's declared size is checked before decoding).
- ``projector.Projector(path, llama_model, n_threads=, use_gpu=)``: an mtmd context on a loaded
  text model; ``ProjectorError`` (a ``LoadError``) with mtmd's reason when refused, e.g. an
  embedding size that does not match the model.
- ``prompt.vision_prompt(messages, projector, render, tokenize) -> VisionPrompt``: a chat whose
  ``ChatMessage.images`` become image chunks between its text tokens (``ImageSpan``s over
  placeholder ids); ``NoVisionError`` without a projector. The serving decode loop encodes and
  decodes each span on its own thread (`app.engine.serving.image_feed`) with
  ``Projector.eval_image(..., cancelled=)``: Stop cuts the encoder's graph (mtmd's ``cb_eval``)
  and the decoding of its embeddings (llama.cpp's abort callback) short; ``last_feed`` says how
  far it got.
- ``not_a_model.refuse_projector(path)``: ``ProjectorNotAModel`` (a ``LoadError``) naming the
  model a projector loads with, for anything that would load or list one as a model.

Which projector goes with which model file is `app.engine.gguf.projector_pairing`'s job.
"""
