import Tensors
import CBLAS
