// safetensors (in progress)
