"""The second backend: the per-frame step exported as ONNX graphs (`export`) and run by
ONNX Runtime (`runtime`) behind the same step interface (`lgdk.infer.backend.StepModel`)."""
