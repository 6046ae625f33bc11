print("moesim")
