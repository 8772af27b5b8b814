"""Custom-resource functions of Valohai Hybrid on AWS (shipped to Lambda)."""
