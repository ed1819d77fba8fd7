// forward (in progress)
