// model_weights (in progress)
