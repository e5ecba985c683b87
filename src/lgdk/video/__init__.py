"""The video application: whole videos and data sets segmented with a streaming predictor
(`engine`), video and mask I/O, background threads, the checks before the first frame,
prompt-started videos and the demo."""
