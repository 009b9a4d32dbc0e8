"""Backpropagation trainers (mini-batch, online and full-batch gradient descent)."""

from engine import hookimpl

from .trainers import Backprop


@hookimpl
def register_trainers(register):
    register(Backprop)
