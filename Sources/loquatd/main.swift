import LoquatServer
print("hi")
