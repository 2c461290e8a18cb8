# The watch application. Hardware-agnostic: it reaches the board only through `hal`.
