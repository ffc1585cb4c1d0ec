#!/bin/bash
placeholder
