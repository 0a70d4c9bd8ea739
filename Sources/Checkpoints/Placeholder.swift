import Tensors
import JSON
