// model_config (in progress)
